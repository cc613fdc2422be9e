import Catalog
import Dataset
import Foundation
import Formats
import Imaging
import TestSupport
import XCTest

final class PrepareTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("prepare") }
    override func tearDown() { directory.remove() }

    /// Catalogues `count` distinct pictures (plus one exact copy and one blank) and returns the database.
    private func catalogue(count: Int, channels: Int = 3) throws -> CatalogDatabase {
        for index in 0..<count {
            try directory.write("images/\(index).png", try PNG.encode(Pictures.noise(width: 20 + index % 5, height: 16, channels: channels, seed: index)))
        }
        try directory.write("images/copy.png", try PNG.encode(Pictures.noise(width: 20, height: 16, channels: channels, seed: 0)))
        try directory.write("images/blank.png", try PNG.encode(PixelImage(width: 20, height: 16, channels: 1, fill: 7)))
        let database = try CatalogDatabase(path: directory.file("catalog.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("images").path)
        return database
    }

    func testFitModesGeometry() {
        // 6×2: left third black, middle gray, right third white.
        var image = PixelImage(width: 6, height: 2, channels: 1)
        for y in 0..<2 { for x in 0..<6 { image.pixels[y * 6 + x] = [0, 0, 128, 128, 255, 255][x] } }
        let crop = image.fitted(size: 2, mode: .crop)
        XCTAssertEqual(crop.pixels, [128, 128, 128, 128], "centre square is the gray middle")
        let pad = image.fitted(size: 6, mode: .pad, background: (255, 0, 0))
        XCTAssertEqual([pad.width, pad.height], [6, 6])
        let red = PixelImage.luma(255, 0, 0)
        XCTAssertEqual(Array(pad.pixels[0..<6]), [UInt8](repeating: red, count: 6), "top rows are background")
        XCTAssertEqual(Array(pad.pixels[12..<18]), [0, 0, 128, 128, 255, 255], "image in the middle rows")
        XCTAssertEqual(Array(pad.pixels[30..<36]), [UInt8](repeating: red, count: 6))
        let stretch = image.fitted(size: 3, mode: .stretch)
        XCTAssertEqual([stretch.width, stretch.height], [3, 3])
        XCTAssertLessThan(stretch.pixels[0], 40, "left stays dark")
        XCTAssertEqual(Int(stretch.pixels[1]), 128, accuracy: 2)
        XCTAssertGreaterThan(stretch.pixels[2], 215, "right stays bright")
    }

    func testPrepareWritesNumPyShardsIndexAndManifest() throws {
        let database = try catalogue(count: 30)
        let out = directory.file("dataset").path
        var options = PrepareOptions(size: 8, channels: 3)
        options.shardBytes = 8 * 8 * 3 * 12  // 12 images per shard: several shards
        let manifest = try DatasetPreparer(database: database, options: options).prepare(into: out)
        XCTAssertEqual(manifest.count, 30, "the copy and the blank are not usable")
        XCTAssertEqual(manifest.shards.map(\.count), [12, 12, 6])
        XCTAssertEqual(manifest.normalization, "x/127.5 - 1")
        var loaded = try DatasetManifest.load(from: out)
        XCTAssertEqual(loaded.createdAt.timeIntervalSince1970, manifest.createdAt.timeIntervalSince1970, accuracy: 1)
        loaded.createdAt = manifest.createdAt  // ISO 8601 keeps whole seconds
        XCTAssertEqual(loaded, manifest)
        let index = CSV.parse(try String(contentsOfFile: out + "/index.csv", encoding: .utf8))
        XCTAssertEqual(index.first, ["row", "shard", "path", "sha256"])
        XCTAssertEqual(index.count, 31)
        XCTAssertEqual(index[13][1], "1")

        // The first sample is 0.png centre-cropped (20×16 → 16×16) and resized to 8×8.
        let expected = Pictures.noise(width: 20, height: 16, channels: 3, seed: 0).fitted(size: 8, mode: .crop)
        let (header, data) = try Npy.read(path: out + "/shard-00000.npy")
        XCTAssertEqual(header.shape, [12, 8, 8, 3])
        let first = index[1][2]
        XCTAssertEqual(first, "0.png")
        XCTAssertEqual(Array(data[0..<192]), expected.pixels)

        guard let python = PillowReference.python else { throw XCTSkip("NumPy not installed") }
        let summary = try Process.output(python, ["-c", """
            import numpy, json, glob
            m = json.load(open('\(out)/dataset.json'))
            shards = [numpy.load(f'\(out)/{s["file"]}') for s in m["shards"]]
            print(sum(len(s) for s in shards), shards[0].dtype, shards[0].shape[1:])
            """])
        XCTAssertEqual(summary.trimmingCharacters(in: .whitespacesAndNewlines), "30 uint8 (8, 8, 3)")
    }

    func testFloat32ShardsHoldTheExactMinusOneToOneMapping() throws {
        let database = try catalogue(count: 3, channels: 1)
        let out = directory.file("float").path
        try DatasetPreparer(database: database, options: PrepareOptions(size: 4, channels: 1, dtype: "float32")).prepare(into: out)
        let (header, data) = try Npy.read(path: out + "/shard-00000.npy")
        XCTAssertEqual(header.dtype, .float32)
        let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertTrue(values.allSatisfy { (-1...1).contains($0) })
        let raw = Pictures.noise(width: 20, height: 16, channels: 1, seed: 0).fitted(size: 4, mode: .crop).pixels
        XCTAssertEqual(Array(values[0..<16]), raw.map { Float($0) / 127.5 - 1 })
        XCTAssertEqual(Float(UInt8(0)) / 127.5 - 1, -1)
        XCTAssertEqual(Float(UInt8(255)) / 127.5 - 1, 1)
    }

    func testUndecodableImagesAreSkippedCountedAndRecorded() throws {
        let database = try catalogue(count: 5)
        // Broken after cataloguing: prepare finds out.
        let victim = directory.file("images/3.png")
        let bytes = Array(try Data(contentsOf: victim))
        try Data(bytes.prefix(bytes.count / 2)).write(to: victim)
        var warnings: [String] = []
        let manifest = try DatasetPreparer(database: database, options: PrepareOptions(size: 8, channels: 3))
            .prepare(into: directory.file("out").path, warn: { warnings.append($0) })
        XCTAssertEqual(manifest.count, 4)
        XCTAssertEqual(manifest.skipped, 1)
        XCTAssertEqual(manifest.skippedFiles.first?.path, "3.png")
        XCTAssertTrue(warnings.first?.contains("3.png") ?? false)
        XCTAssertEqual(try database.listing(.status(.truncated)).dropFirst().map { $0[0] }, ["3.png"])
    }

    func testOutputIsReplacedWholeAndForeignFoldersAreNeverReplaced() throws {
        let database = try catalogue(count: 6)
        let out = directory.file("dataset").path
        try DatasetPreparer(database: database, options: PrepareOptions(size: 8, channels: 3)).prepare(into: out)
        try DatasetPreparer(database: database, options: PrepareOptions(size: 4, channels: 1, limit: 2)).prepare(into: out)
        XCTAssertEqual(try DatasetManifest.load(from: out).count, 2)
        XCTAssertEqual(try DatasetManifest.load(from: out).size, 4)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".partial") || $0.contains(".old") }
        XCTAssertEqual(leftovers, [])

        let foreign = directory.file("precious").path
        try directory.write("precious/thesis.tex", Array("do not delete".utf8))
        XCTAssertThrowsError(try DatasetPreparer(database: database, options: PrepareOptions(size: 4, channels: 1)).prepare(into: foreign)) {
            XCTAssertTrue("\($0)".contains("refusing"))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: foreign + "/thesis.tex"))
    }

    /// The catalogue is read a page (256 images) at a time: across pages, shards and the limit,
    /// the dataset holds exactly the usable images in id order.
    func testCataloguesAreReadPageByPageInIdOrder() throws {
        let database = try catalogue(count: 600, channels: 1)
        let usable = try database.usableImages()
        XCTAssertEqual(usable.count, 600)
        XCTAssertEqual(try database.usableImageCount(), 600)
        for limit in [nil, 555] as [Int?] {
            let out = directory.file("paged-\(limit ?? 0)").path
            let manifest = try DatasetPreparer(database: database, options: PrepareOptions(size: 8, channels: 1, limit: limit, shardBytes: 64 * 100))
                .prepare(into: out)
            let expected = Array(usable.prefix(limit ?? usable.count))
            XCTAssertEqual(manifest.count, expected.count)
            XCTAssertEqual(manifest.shards.map(\.count).reduce(0, +), expected.count)
            XCTAssertEqual(manifest.shards.count, (expected.count + 99) / 100)
            let rows = CSV.parse(try String(contentsOfFile: out + "/index.csv", encoding: .utf8)).dropFirst()
            XCTAssertEqual(rows.map { $0[2] }, expected.map(\.path))
            XCTAssertEqual(rows.map { $0[0] }, (0..<expected.count).map(String.init))
        }
    }

    func testDropNearDuplicatesKeepsOneOfEachGroup() throws {
        let base = Pictures.pattern(width: 64, height: 64, channels: 3, seed: 4)
        try directory.write("images/a.png", try PNG.encode(base))
        try directory.write("images/b.jpg", try JPEG.encode(base.resized(width: 40, height: 40), quality: 90))
        try directory.write("images/c.png", try PNG.encode(Pictures.noise(width: 64, height: 64, channels: 3, seed: 1)))
        let database = try CatalogDatabase(path: directory.file("near.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("images").path)
        let all = try DatasetPreparer(database: database, options: PrepareOptions(size: 8, channels: 3)).prepare(into: directory.file("all").path)
        let dropped = try DatasetPreparer(database: database, options: PrepareOptions(size: 8, channels: 3, dropNearDuplicates: true))
            .prepare(into: directory.file("dropped").path)
        XCTAssertEqual(all.count, 3)
        XCTAssertEqual(dropped.count, 2)
    }
}

final class PrepareNonUTF8Tests: XCTestCase {
    func testFilesWithNonUTF8NamesArePreparedFromTheirExactBytes() throws {
        let directory = try TemporaryDirectory("latin1")
        defer { directory.remove() }
        try directory.write("images/plain.png", try PNG.encode(Pictures.noise(width: 8, height: 8, channels: 1, seed: 1)))
        let png = try PNG.encode(Pictures.noise(width: 8, height: 8, channels: 1, seed: 2))
        let name: [UInt8] = Array(directory.file("images").path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".png".utf8) + [0]
        let descriptor = name.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_WRONLY | O_CREAT, 0o644) }
        _ = png.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        let database = try CatalogDatabase(path: directory.file("c.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("images").path)
        let manifest = try DatasetPreparer(database: database, options: PrepareOptions(size: 8, channels: 1)).prepare(into: directory.file("out").path)
        XCTAssertEqual(manifest.count, 2)
        XCTAssertEqual(manifest.skipped, 0)
        let index = try String(contentsOfFile: directory.file("out/index.csv").path, encoding: .utf8)
        XCTAssertTrue(index.contains("caf\\xE9.png"), index)
    }
}
