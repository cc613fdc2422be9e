import Foundation
import Formats
import Imaging

/// A realistic dark-data dump made from real images (Fashion-MNIST, tinted and resized): PNG and
/// JPEG at several sizes in nested folders, exact copies, re-encoded and resized near duplicates,
/// truncated and zero-byte files, wrong extensions, non-image files, blank images and a symlink
/// loop. `expected.csv` lists what each file is, for checking a catalogue against.
public struct MessyDumpRecipe {
    public var source = FashionMNISTRecipe.defaultSource
    /// Distinct pictures to start from.
    public var pictures = 120
    public var seed: UInt64 = 7

    public init(source: String = FashionMNISTRecipe.defaultSource, pictures: Int = 120, seed: UInt64 = 7) {
        self.source = source
        self.pictures = pictures
        self.seed = seed
    }

    public struct Result: Codable, Sendable {
        public var files: Int
        public var root: String
    }

    public func write(to output: String) throws -> Result {
        let root = URL(fileURLWithPath: output).appendingPathComponent("dump")
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: root.path), !((try? fileManager.contentsOfDirectory(atPath: root.path)) ?? []).isEmpty {
            throw RecipeError.outputNotEmpty(path: root.path)
        }
        let scratch = URL(fileURLWithPath: output).appendingPathComponent(".fashion-source")
        defer { try? fileManager.removeItem(at: scratch) }
        _ = try FashionMNISTRecipe(source: source, split: .test, limit: pictures).write(to: scratch.path)

        var random = SeededRandom(seed: seed)
        var expected = CSV.row(["path", "kind", "expected_status"])
        var files = 0
        func put(_ relative: String, _ bytes: [UInt8], _ kind: String, _ status: String) throws {
            let target = root.appendingPathComponent(relative)
            try fileManager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: target)
            expected += CSV.row([relative, kind, status])
            files += 1
        }
        let folders = ["camera/2019", "camera/2020/holiday", "scans", "downloads/misc", "shared/old/backup"]
        for index in 0..<pictures {
            let path = scratch.appendingPathComponent(String(format: "images/test/%03d/%05d.png", index / 1000, index)).path
            let gray = try PNG.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            // A tinted colour photo at one of several sizes.
            let side = [64, 96, 128, 160][Int(random.next() % 4)]
            var photo = gray.converted(toChannels: 3).resized(width: side, height: side * 3 / 4 + Int(random.next() % 16))
            let tint = (0..<3).map { _ in Int(random.next() % 60) }
            for i in 0..<(photo.pixels.count / 3) { for c in 0..<3 { photo.pixels[3 * i + c] = UInt8(min(255, Int(photo.pixels[3 * i + c]) + tint[c])) } }
            let folder = folders[index % folders.count]
            let asJPEG = index % 3 == 0
            let name = String(format: "%@/IMG_%04d.%@", folder, index, asJPEG ? "jpg" : "png")
            let bytes = asJPEG ? try JPEG.encode(photo, quality: 85 + Int(random.next() % 10)) : try PNG.encode(photo)
            try put(name, bytes, "photo", "ok")
            switch index % 12 {
            case 1: try put(String(format: "shared/old/backup/copy_of_IMG_%04d.%@", index, asJPEG ? "jpg" : "png"), bytes, "exact copy", "ok")
            case 2: try put(String(format: "downloads/misc/IMG_%04d_small.jpg", index), try JPEG.encode(photo.resized(width: photo.width / 2, height: photo.height / 2), quality: 70), "near duplicate (resized, re-encoded)", "ok")
            case 3: try put(String(format: "scans/IMG_%04d_cut.%@", index, asJPEG ? "jpg" : "png"), Array(bytes.prefix(bytes.count / 2)), "truncated", "truncated")
            case 4: try put(String(format: "camera/2020/IMG_%04d.jpeg", index), try PNG.encode(photo), "PNG with a .jpeg name (an exact copy of the PNG)", "ok")
            case 5:
                var damaged = bytes
                for offset in stride(from: bytes.count / 3, to: min(bytes.count / 3 + 40, bytes.count - 2), by: 3) { damaged[offset] ^= 0x5A }
                try put(String(format: "scans/IMG_%04d_damaged.%@", index, asJPEG ? "jpg" : "png"), damaged, "corrupt bytes", "corrupt")
            default: break
            }
        }
        try put("camera/empty.jpg", [], "zero bytes", "empty")
        try put("camera/2019/blank_white.png", try PNG.encode(PixelImage(width: 120, height: 90, channels: 3, fill: 250)), "blank", "ok (low information)")
        try put("scans/blank_black.jpg", try JPEG.encode(PixelImage(width: 100, height: 100, channels: 1, fill: 3)), "blank", "ok (low information)")
        try put("downloads/notes.txt", Array("shopping list: film, fixer, stop bath\n".utf8), "text", "not_image")
        try put("downloads/photo.png.txt", Array("{\"not\": \"an image\"}".utf8), "JSON with an image-like name", "not_image")
        try put("downloads/animation.gif", Array("GIF89a".utf8) + [8, 0, 8, 0, 0, 0, 0, 0x3B], "GIF", "unsupported")
        try put("downloads/picture.webp", Array("RIFF".utf8) + [20, 0, 0, 0] + Array("WEBPVP8 ".utf8) + [UInt8](repeating: 0, count: 12), "WebP", "unsupported")
        try put("downloads/zeros.jpg", [UInt8](repeating: 0, count: 512), "zeros with a .jpg name", "not_image")
        try fileManager.createSymbolicLink(atPath: root.appendingPathComponent("shared/old/loop").path, withDestinationPath: "../..")
        expected += CSV.row(["shared/old/loop", "symlink loop (to shared/)", "skipped"])
        try Data(expected.utf8).write(to: URL(fileURLWithPath: output).appendingPathComponent("expected.csv"))
        return Result(files: files, root: root.path)
    }
}
