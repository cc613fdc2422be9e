import Catalog
import Dataset
import Foundation
import Imaging
import TestSupport
import XCTest

final class MinimumSizeTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("min-size") }
    override func tearDown() { directory.remove() }

    func testPrepareSkipsImagesBelowTheMinimumSizeWithAReason() throws {
        try directory.write("images/tiny.png", try PNG.encode(Pictures.pattern(width: 16, height: 20, channels: 3, seed: 1)))
        try directory.write("images/big.png", try PNG.encode(Pictures.pattern(width: 80, height: 64, channels: 3, seed: 2)))
        let database = try CatalogDatabase(path: directory.file("c.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("images").path)

        var warnings: [String] = []
        let manifest = try DatasetPreparer(database: database, options: PrepareOptions(size: 64, channels: 3))
            .prepare(into: directory.file("d").path, warn: { warnings.append($0) })
        XCTAssertEqual(manifest.options.minSize, 32, "half the target size by default")
        XCTAssertEqual(manifest.count, 1)
        XCTAssertEqual(manifest.skippedFiles.map { [$0.path, $0.reason] }, [["tiny.png", "smaller than --min-size 32 (16x20)"]])
        XCTAssertTrue(warnings.contains { $0.contains("1 images smaller than --min-size 32") }, "\(warnings)")

        let all = try DatasetPreparer(database: database, options: PrepareOptions(size: 64, channels: 3, minSize: 0)).prepare(into: directory.file("d").path)
        XCTAssertEqual(all.count, 2, "--min-size 0 keeps everything")

        XCTAssertThrowsError(try DatasetPreparer(database: database, options: PrepareOptions(size: 64, channels: 3, minSize: 100))
            .prepare(into: directory.file("e").path)) { error in
            XCTAssertTrue("\(error)".contains("all 2 usable images are smaller than --min-size 100"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.file("e").path), "nothing written when nothing is usable")
    }

    func testDroppingNearDuplicatesKeepsTheLargestOfEachGroup() throws {
        for size in [32, 64, 128] { try directory.write("icons/ring-\(size).png", try PNG.encode(Pictures.symbolicIcon(size: size))) }
        try directory.write("icons/other.png", try PNG.encode(Pictures.symbolicIcon(size: 64, variant: 1)))
        let database = try CatalogDatabase(path: directory.file("c.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("icons").path)
        XCTAssertEqual(try database.largestOfEachNearGroup().count, 2, "the three rings are one group, the other icon heads its own")

        let manifest = try DatasetPreparer(database: database, options: PrepareOptions(size: 64, channels: 3, dropNearDuplicates: true))
            .prepare(into: directory.file("d").path)
        XCTAssertEqual(manifest.count, 2, "one ring and the other icon")
        let index = try String(contentsOfFile: directory.file("d/index.csv").path, encoding: .utf8)
        XCTAssertTrue(index.contains("ring-128.png") && !index.contains("ring-32.png") && !index.contains("ring-64.png"), index)
        XCTAssertTrue(index.contains("other.png"))
    }
}
