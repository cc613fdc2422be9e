import Catalog
import Foundation
import GRDB
import Imaging
import TestSupport
import XCTest

/// Real folders: icons drawn in alpha over black RGB, tiny images, banners.
final class AlphaAndShapeTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("alpha") }
    override func tearDown() { directory.remove() }

    private func record(_ database: CatalogDatabase, _ path: String) throws -> ImageRecord {
        try XCTUnwrap(try database.writer.read { db in try ImageRecord.filter(ImageRecord.Columns.path == path).fetchOne(db) })
    }

    func testAlphaIsCompositedOverTheBackgroundBeforeStatisticsAndHashing() throws {
        for size in [32, 64, 128] { try directory.write("icons/ring-\(size).png", try PNG.encode(Pictures.symbolicIcon(size: size))) }
        try directory.write("icons/other-64.png", try PNG.encode(Pictures.symbolicIcon(size: 64, variant: 1)))
        let database = try CatalogDatabase()
        try CatalogScanner(database: database, options: CatalogOptions(jobs: 2)).scan(root: directory.file("icons").path)

        let rings = try [32, 64, 128].map { try record(database, "ring-\($0).png") }
        for ring in rings {
            XCTAssertFalse(ring.lowInformation, "\(ring.path): the shape lives in alpha; over white it is informative")
            XCTAssertGreaterThan(ring.std ?? 0, 50)
        }
        // Over white: a black shape on white, so the mean is high.
        XCTAssertGreaterThan(rings[1].mean ?? 0, 128)
        // The same icon at three sizes is one near-duplicate group; another icon is not in it.
        XCTAssertNotNil(rings[0].nearGroup)
        XCTAssertEqual(Set(rings.map(\.nearGroup)).count, 1, "hashes \(rings.map { $0.phash ?? "" })")
        let other = try record(database, "other-64.png")
        XCTAssertNotEqual(other.phash, rings[1].phash)
        XCTAssertNotEqual(other.nearGroup, rings[1].nearGroup)
        XCTAssertEqual(try database.summary().usable, 4)
    }

    func testOpaqueImagesHashAsBeforeWhateverTheBackground() {
        let photo = Pictures.pattern(width: 40, height: 30, channels: 3, seed: 3)
        XCTAssertEqual(PerceptualHash(image: photo, background: (255, 255, 255)), PerceptualHash(image: photo, background: (0, 0, 0)))
        XCTAssertEqual(ImageStatistics(image: photo, background: (255, 255, 255)), ImageStatistics(image: photo, background: (0, 0, 0)))
    }

    func testChangingTheBackgroundReinspectsPNGsOnTheNextScan() throws {
        try directory.write("icons/ring.png", try PNG.encode(Pictures.symbolicIcon(size: 48)))
        let database = try CatalogDatabase()
        let root = directory.file("icons").path
        let black = try CatalogScanner(database: database, options: CatalogOptions(background: [0, 0, 0])).scan(root: root)
        XCTAssertEqual(black.filesProcessed, 1)
        XCTAssertTrue(try record(database, "ring.png").lowInformation, "black over black is blank")
        let unchanged = try CatalogScanner(database: database, options: CatalogOptions(background: [0, 0, 0])).scan(root: root)
        XCTAssertEqual(unchanged.filesProcessed, 0, "same background, same files: nothing to re-read")
        let white = try CatalogScanner(database: database, options: CatalogOptions()).scan(root: root)
        XCTAssertEqual(white.filesProcessed, 1, "a new background re-inspects the PNGs")
        XCTAssertFalse(try record(database, "ring.png").lowInformation)
    }

    func testSmallAndOddAspectImagesAreCountedAndListed() throws {
        try directory.write("tiny.png", try PNG.encode(Pictures.pattern(width: 16, height: 16, channels: 3, seed: 1)))
        try directory.write("banner.png", try PNG.encode(Pictures.pattern(width: 200, height: 50, channels: 3, seed: 2)))
        try directory.write("fine.png", try PNG.encode(Pictures.pattern(width: 64, height: 48, channels: 3, seed: 3)))
        try directory.write("wide.png", try PNG.encode(Pictures.pattern(width: 96, height: 32, channels: 3, seed: 4)))  // exactly 3:1
        let database = try CatalogDatabase()
        try CatalogScanner(database: database).scan(root: directory.path)
        let summary = try database.summary()
        XCTAssertEqual(summary.small, 1)
        XCTAssertEqual(summary.oddAspect, 1)
        XCTAssertEqual(try database.listing(.small), [["path", "width", "height"], ["tiny.png", "16", "16"]])
        XCTAssertEqual(try database.listing(.oddAspect), [["path", "width", "height"], ["banner.png", "200", "50"]])
        XCTAssertEqual(CatalogListing(argument: "odd-aspect"), .oddAspect)
        let json = String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)
        XCTAssertTrue(json.contains("\"odd_aspect\":1") && json.contains("\"small\":1"), json)
    }
}
