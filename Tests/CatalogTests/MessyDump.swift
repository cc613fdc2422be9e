import Foundation
import Imaging
import TestSupport

/// A small dark-data dump with one file of every kind the catalogue must tell apart.
struct MessyDump {
    let directory: TemporaryDirectory
    var root: String { directory.path }

    /// Expected statuses by relative path.
    var expected: [String: String] = [:]

    init() throws {
        directory = try TemporaryDirectory("messy")
        func add(_ path: String, _ bytes: [UInt8], _ status: String) throws {
            try directory.write(path, bytes)
            expected[path] = status
        }
        let photos = (0..<4).map { Pictures.pattern(width: 96, height: 72, channels: 3, seed: $0 * 17 + 1) }
        for (index, photo) in photos.enumerated() { try add("photos/\(index).png", try PNG.encode(photo), "ok") }
        let first = try PNG.encode(photos[0])
        try add("photos/copies/0-copy.png", first, "ok")                                               // exact copy
        try add("photos/copies/1-small.jpg", try JPEG.encode(photos[1].resized(width: 48, height: 36), quality: 85), "ok")  // near copy
        try add("gray/noise.png", try PNG.encode(Pictures.noise(width: 32, height: 32, channels: 1, seed: 5)), "ok")
        try add("blank.png", try PNG.encode(PixelImage(width: 40, height: 40, channels: 3, fill: 250)), "ok")
        try add("truncated.png", Array(first.prefix(first.count / 2)), "truncated")
        let jpeg = try JPEG.encode(photos[2], quality: 90)
        try add("truncated.jpg", Array(jpeg.prefix(jpeg.count / 2)), "truncated")
        var corrupt = first
        corrupt[corrupt.count / 2] ^= 0x5A
        try add("corrupt.png", corrupt, "corrupt")
        try add("empty.jpg", [], "empty")
        try add("notes.txt", Array("not a picture\n".utf8), "not_image")
        try add("really-a-png.jpg", try PNG.encode(photos[3].resized(width: 20, height: 15)), "ok")       // wrong extension
        try add("anim.gif", Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0], "unsupported")
        try add("huge.png", try PNG.encode(PixelImage(width: 300, height: 300, channels: 1, fill: 9)), "too_large")
        try add("zeros.png", [UInt8](repeating: 0, count: 64), "not_image")
    }

    /// The limit below which huge.png is refused and everything else is decoded.
    static let maxPixels = 300 * 300 - 1
}
