import Catalog
import Formats
import Foundation
import GRDB
import Imaging
import TestSupport
import XCTest

final class CatalogScannerTests: XCTestCase {
    @discardableResult
    private func scan(_ dump: MessyDump, _ database: CatalogDatabase, options: CatalogOptions = CatalogOptions(maxPixels: MessyDump.maxPixels)) throws -> ScanReport {
        try CatalogScanner(database: database, options: options).scan(root: dump.root)
    }

    private func statuses(_ database: CatalogDatabase) throws -> [String: String] {
        try database.writer.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT path, status FROM images").map { ($0["path"], $0["status"]) })
        }
    }

    private func record(_ database: CatalogDatabase, _ path: String) throws -> ImageRecord {
        try XCTUnwrap(try database.writer.read { db in try ImageRecord.filter(ImageRecord.Columns.path == path).fetchOne(db) })
    }

    func testEveryFileGetsItsStatusAndReason() throws {
        let dump = try MessyDump()
        defer { dump.directory.remove() }
        let database = try CatalogDatabase()
        let report = try scan(dump, database)
        XCTAssertEqual(report.filesSeen, dump.expected.count)
        XCTAssertEqual(try statuses(database), dump.expected)

        let png = try record(database, "photos/0.png")
        XCTAssertEqual([png.width, png.height, png.channels, png.bitDepth], [96, 72, 3, 8])
        XCTAssertEqual(png.format, "png")
        XCTAssertEqual(png.sha256?.count, 64)
        XCTAssertEqual(png.phash?.count, 16)
        XCTAssertNil(png.error)
        XCTAssertEqual(try record(database, "really-a-png.jpg").format, "png")
        XCTAssertEqual(try record(database, "anim.gif").format, "gif")
        XCTAssertTrue(try record(database, "truncated.png").error?.contains("truncated") ?? false)
        XCTAssertTrue(try record(database, "corrupt.png").error?.contains("CRC") ?? false)
        XCTAssertEqual(try record(database, "huge.png").width, 300)  // header read, pixels never decoded
        XCTAssertTrue(try record(database, "huge.png").error?.contains("too large") ?? false)
        XCTAssertTrue(try record(database, "blank.png").lowInformation)
        XCTAssertFalse(png.lowInformation)
    }

    func testExactAndNearDuplicatesAreGroupedWithoutChaining() throws {
        let dump = try MessyDump()
        defer { dump.directory.remove() }
        let database = try CatalogDatabase()
        try scan(dump, database)
        let original = try record(database, "photos/0.png"), copy = try record(database, "photos/copies/0-copy.png")
        XCTAssertEqual(copy.exactGroup, original.id)
        XCTAssertEqual(original.exactGroup, original.id)
        XCTAssertNotEqual(try record(database, "photos/1.png").exactGroup, original.id)

        let near = try record(database, "photos/1.png"), small = try record(database, "photos/copies/1-small.jpg")
        XCTAssertNotNil(near.nearGroup)
        XCTAssertEqual(near.nearGroup, small.nearGroup)
        let pairs = try database.writer.read { db in try NearPair.fetchAll(db) }
        XCTAssertTrue(pairs.contains { Set([$0.imageA, $0.imageB]) == Set([near.id!, small.id!]) && $0.distance <= 4 })
        XCTAssertTrue(pairs.allSatisfy { $0.imageA < $0.imageB })

        let summary = try database.summary()
        XCTAssertEqual(summary.exactDuplicateFiles, 1)
        // photos/1 with its small JPEG, and photos/3 with its resized copy behind a .jpg name.
        XCTAssertEqual(summary.nearDuplicateGroups, 2)
        XCTAssertEqual(try record(database, "photos/3.png").nearGroup, try record(database, "really-a-png.jpg").nearGroup)
        XCTAssertNotEqual(near.nearGroup, try record(database, "photos/3.png").nearGroup)
        XCTAssertEqual(summary.lowInformation, 1)
        // ok: 4 photos + copy + small jpg + noise + blank + wrong-extension png = 9; minus copy and blank.
        XCTAssertEqual(summary.byStatus["ok"], 9)
        XCTAssertEqual(summary.usable, 7)
        XCTAssertEqual(summary.files, dump.expected.count)
    }

    func testRescanIsIncrementalAndMarksVanishedFilesMissing() throws {
        var dump = try MessyDump()
        defer { dump.directory.remove() }
        let database = try CatalogDatabase()
        try scan(dump, database)
        let before = try record(database, "photos/2.png")

        let again = try scan(dump, database)
        XCTAssertEqual(again.filesProcessed, 0)
        XCTAssertEqual(again.filesUnchanged, dump.expected.count)
        XCTAssertEqual(try record(database, "photos/2.png").processedAt, before.processedAt)

        // Change one file (new content, new size), remove one, add one.
        try dump.directory.write("photos/2.png", try PNG.encode(Pictures.noise(width: 10, height: 10, channels: 1, seed: 3)))
        try FileManager.default.removeItem(at: dump.directory.file("notes.txt"))
        try dump.directory.write("new/fresh.png", try PNG.encode(Pictures.pattern(width: 30, height: 30, channels: 1, seed: 99)))
        dump.expected["new/fresh.png"] = "ok"
        dump.expected["notes.txt"] = "missing"
        let third = try scan(dump, database)
        XCTAssertEqual(third.filesProcessed, 2)
        XCTAssertEqual(third.filesMissing, 1)
        XCTAssertEqual(try statuses(database), dump.expected)
        let changed = try record(database, "photos/2.png")
        XCTAssertEqual(changed.id, before.id)
        XCTAssertEqual([changed.width, changed.channels], [10, 1])
        XCTAssertNotEqual(changed.sha256, before.sha256)
        XCTAssertEqual(try database.summary().byStatus["missing"], 1)

        // A missing file that comes back is catalogued again under its old row.
        try dump.directory.write("notes.txt", Array("back again\n".utf8))
        try scan(dump, database)
        XCTAssertEqual(try record(database, "notes.txt").status, .notImage)
    }

    /// Exact groups as sets of paths, and near pairs as pairs of paths: what a catalogue says about
    /// duplicates, independent of the ids it happened to hand out.
    private func duplicates(_ database: CatalogDatabase) throws -> (exact: Set<Set<String>>, near: Set<[String]>) {
        try database.writer.read { db in
            var groups: [Int64: Set<String>] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, exact_group FROM images WHERE status != 'missing' AND exact_group IS NOT NULL") {
                groups[row["exact_group"], default: []].insert(row["path"])
            }
            let pairs = try Row.fetchAll(db, sql: """
                SELECT a.path AS a, b.path AS b FROM near_pairs JOIN images AS a ON a.id = image_a JOIN images AS b ON b.id = image_b
                """)
            return (Set(groups.values), Set(pairs.map { [$0["a"] as String, $0["b"] as String].sorted() }))
        }
    }

    /// Rows are stored with first guesses at their groups and regrouping rewrites only what differs:
    /// after every re-scan the duplicates must be exactly those of a fresh catalogue of the folder,
    /// including when a changed file takes over or leaves a group.
    func testIncrementalGroupsEqualAFreshCatalogue() throws {
        let directory = try TemporaryDirectory("groups")
        defer { directory.remove() }
        let pictures = (0..<5).map { try! PNG.encode(Pictures.pattern(width: 40, height: 30, channels: 1, seed: $0 * 13 + 2)) }
        let nearCopy = try PNG.encode(Pictures.pattern(width: 40, height: 30, channels: 1, seed: 15).resized(width: 36, height: 27))
        let steps: [[(String, [UInt8]?)]] = [
            [("a.png", pictures[0]), ("b.png", pictures[1]), ("c.png", pictures[0]), ("d.png", pictures[1]), ("e.png", nearCopy)],
            [("a.png", pictures[2]), ("b.png", nil), ("f.png", pictures[0])],            // the first of a group changes; one leaves
            [("c.png", pictures[3]), ("a.png", pictures[0]), ("b.png", pictures[2])],    // groups swap members; a missing file returns
            [("e.png", nil), ("d.png", pictures[4]), ("g.png", pictures[4])],
        ]
        let database = try CatalogDatabase()
        var nearPairsSeen = 0
        for (number, step) in steps.enumerated() {
            for (path, bytes) in step {
                if let bytes { try directory.write(path, bytes) } else { try FileManager.default.removeItem(at: directory.file(path)) }
            }
            try CatalogScanner(database: database).scan(root: directory.path)
            let fresh = try CatalogDatabase()
            try CatalogScanner(database: fresh).scan(root: directory.path)
            let incremental = try duplicates(database), expected = try duplicates(fresh)
            XCTAssertEqual(incremental.exact, expected.exact, "exact groups after step \(number)")
            XCTAssertEqual(incremental.near, expected.near, "near pairs after step \(number)")
            nearPairsSeen += incremental.near.count
        }
        XCTAssertTrue(try duplicates(database).exact.contains(["a.png", "f.png"]))
        XCTAssertGreaterThan(nearPairsSeen, 0, "the fixture has near pairs")
    }

    /// A scan interrupted after its rows were committed but before regrouping leaves first guesses
    /// and no near pairs; the next scan must regroup even though no file changed.
    func testAScanInterruptedBeforeRegroupingIsRegroupedByTheNext() throws {
        let dump = try MessyDump()
        defer { dump.directory.remove() }
        let database = try CatalogDatabase()
        try scan(dump, database)
        let complete = try duplicates(database)
        XCTAssertFalse(complete.near.isEmpty)
        try database.writer.write { db in
            try db.execute(sql: "DELETE FROM near_pairs")
            try db.execute(sql: "UPDATE images SET near_group = id WHERE near_group IS NOT NULL")
            try db.execute(sql: "UPDATE scans SET finished_at = NULL")
        }
        let again = try scan(dump, database)
        XCTAssertEqual(again.filesProcessed, 0)
        XCTAssertEqual(try duplicates(database).near, complete.near)
        let nearGroups = try database.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT near_group) FROM images WHERE near_group != id") }
        XCTAssertGreaterThan(nearGroups ?? 0, 0)
    }

    func testSymlinksAreSkippedByDefaultAndLoopsNeverHangTheWalk() throws {
        let dump = try MessyDump()
        defer { dump.directory.remove() }
        try FileManager.default.createSymbolicLink(atPath: dump.directory.file("photos/loop").path, withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: dump.directory.file("link.png").path, withDestinationPath: "photos/0.png")
        try FileManager.default.createSymbolicLink(atPath: dump.directory.file("dangling.png").path, withDestinationPath: "nowhere.png")

        let plain = try CatalogDatabase()
        let report = try scan(dump, plain)
        XCTAssertEqual(report.filesSeen, dump.expected.count)
        XCTAssertEqual(report.skippedSymlinks, 3)

        let following = try CatalogDatabase()
        let followed = try scan(dump, following, options: CatalogOptions(followSymlinks: true, maxPixels: MessyDump.maxPixels))
        XCTAssertEqual(followed.filesSeen, dump.expected.count + 2)
        XCTAssertTrue(followed.warnings.contains { $0.contains("photos/loop") && $0.contains("loop") })
        let statuses = try statuses(following)
        XCTAssertEqual(statuses["link.png"], "ok")
        XCTAssertEqual(statuses["dangling.png"], "unreadable")
        XCTAssertEqual(try record(following, "link.png").exactGroup, try record(following, "photos/0.png").exactGroup)
    }

    func testUnreadableFilesAreRecordedWithTheReason() throws {
        guard getuid() != 0 else { throw XCTSkip("root reads every file; the dangling-symlink case covers unreadable as root") }
        let dump = try MessyDump()
        defer { dump.directory.remove() }
        let path = dump.directory.file("photos/0.png").path
        chmod(path, 0)
        defer { chmod(path, 0o644) }
        let database = try CatalogDatabase()
        try scan(dump, database)
        let row = try record(database, "photos/0.png")
        XCTAssertEqual(row.status, .unreadable)
        XCTAssertTrue(row.error?.contains("Permission denied") ?? false)
    }

    func testNonUTF8AndOddFilenamesAreCatalogued() throws {
        let directory = try TemporaryDirectory("names")
        defer { directory.remove() }
        let png = try PNG.encode(Pictures.pattern(width: 16, height: 16, channels: 1, seed: 1))
        try directory.write("with space, and comma.png", png)
        try directory.write("line\nbreak.png", png)
        // Two Latin-1 names (not valid UTF-8), written with POSIX calls: U+FFFD would merge them.
        for byte: UInt8 in [0xE9, 0xE8] {
            let name: [UInt8] = Array(directory.path.utf8) + Array("/caf".utf8) + [byte] + Array(".png".utf8) + [0]
            let descriptor = name.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_WRONLY | O_CREAT, 0o644) }
            XCTAssertGreaterThanOrEqual(descriptor, 0)
            _ = png.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            close(descriptor)
        }
        let database = try CatalogDatabase()
        let report = try CatalogScanner(database: database).scan(root: directory.path)
        XCTAssertEqual(report.filesSeen, 4)
        let statuses = try statuses(database)
        XCTAssertEqual(Set(statuses.values), ["ok"], "\(statuses)")
        XCTAssertEqual(statuses["line\nbreak.png"], "ok")
        XCTAssertEqual(statuses["caf\\xE9.png"], "ok")
        XCTAssertEqual(statuses["caf\\xE8.png"], "ok")
        XCTAssertEqual(try record(database, "caf\\xE9.png").pathBytes, Data(Array("caf".utf8) + [0xE9] + Array(".png".utf8)))
        // Every name survives the CSV of `inspect --list` and the JSON of `--json` unchanged.
        for row in try database.listing(.status(.ok)).dropFirst() {
            XCTAssertEqual(CSV.parse(CSV.row(row)), [row])
            XCTAssertEqual(try JSONDecoder().decode([String].self, from: try JSONEncoder().encode([row[0]])), [row[0]])
        }
        // A re-scan finds them unchanged by their exact bytes.
        XCTAssertEqual(try CatalogScanner(database: database).scan(root: directory.path).filesUnchanged, 4)
        XCTAssertEqual(displayPath(Array("é/ok".utf8) + [0xFF]), "é/ok\\xFF")
    }

    /// Re-scans look up each batch by (root, path): that must be an index search, not a scan of the
    /// root's rows per batch (which made no-change re-scans take half a first scan).
    func testRescanLookupUsesTheRootPathIndex() throws {
        let database = try CatalogDatabase()
        let plan = try database.writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT id, path_bytes FROM images WHERE root_id = 1 AND path IN (SELECT value FROM json_each('[]'))")
                .map { $0["detail"] as String }.joined(separator: "; ")
        }
        XCTAssertTrue(plan.contains("USING INDEX images_root_path (root_id=? AND path=?)"), plan)
    }

    func testVeryLongNamesAndDeepPathsAreCatalogued() throws {
        let directory = try TemporaryDirectory("long")
        defer { directory.remove() }
        let longName = String(repeating: "n", count: 246) + ".png"  // 250 bytes: near NAME_MAX (255)
        let deep = (0..<14).map { "folder-\($0)-" + String(repeating: "d", count: 200) }.joined(separator: "/")  // > 2,900 bytes
        try directory.write(longName, try PNG.encode(Pictures.pattern(width: 16, height: 16, channels: 1, seed: 1)))
        try directory.write(deep + "/" + longName, try PNG.encode(Pictures.pattern(width: 16, height: 16, channels: 1, seed: 2)))
        let database = try CatalogDatabase()
        let report = try CatalogScanner(database: database).scan(root: directory.path)
        XCTAssertEqual(report.filesSeen, 2)
        XCTAssertEqual(Set(try statuses(database).values), ["ok"])
        XCTAssertEqual(try record(database, deep + "/" + longName).width, 16)
    }

    func testFIFOsAreNeverOpened() throws {
        let directory = try TemporaryDirectory("fifo")
        defer { directory.remove() }
        try directory.write("a.png", try PNG.encode(Pictures.pattern(width: 16, height: 16, channels: 1, seed: 1)))
        XCTAssertEqual(mkfifo(directory.file("pipe").path, 0o644), 0)
        let report = try CatalogScanner(database: try CatalogDatabase()).scan(root: directory.path)
        XCTAssertEqual(report.filesSeen, 1)
    }

    func testRootMustBeADirectory() throws {
        XCTAssertThrowsError(try CatalogScanner(database: try CatalogDatabase()).scan(root: "/nonexistent/folder")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/folder"))
        }
    }
}
