import Catalog
import Formats
import Foundation
import Imaging
import TestSupport
import XCTest

final class CatalogCLITests: XCTestCase {
    private func makeDump(_ count: Int) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("dump")
        for index in 0..<count {
            let image = Pictures.noise(width: 12, height: 12, channels: 1, seed: index)
            try directory.write("part\(index % 7)/\(index).png", try PNG.encode(image))
        }
        try directory.write("part0/copy.png", try PNG.encode(Pictures.noise(width: 12, height: 12, channels: 1, seed: 0)))
        try directory.write("broken.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0])
        return directory
    }

    private func summary(_ db: String) throws -> [String: Any] {
        let result = try DarkroomBinary.run(["inspect", "--db", db, "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    func testInspectReportsTheContractKeysAndListsAsCSV() throws {
        let dump = try makeDump(20)
        defer { dump.remove() }
        let db = dump.file("catalog.sqlite").path
        let scan = try DarkroomBinary.run(["catalog", dump.path, "--db", db, "--jobs", "2"])
        XCTAssertEqual(scan.status, 0, scan.stderr)
        let json = try summary(db)
        for key in ["files", "by_status", "by_format", "exact_duplicate_files", "near_duplicate_groups", "low_information", "usable"] {
            XCTAssertNotNil(json[key], key)
        }
        XCTAssertEqual(json["files"] as? Int, 22)
        XCTAssertEqual((json["by_status"] as? [String: Int])?["ok"], 21)
        XCTAssertEqual((json["by_status"] as? [String: Int])?["truncated"], 1)
        XCTAssertEqual(json["exact_duplicate_files"] as? Int, 1)
        XCTAssertEqual(json["usable"] as? Int, 20)

        let duplicates = try DarkroomBinary.run(["inspect", "--db", db, "--list", "exact-duplicates"])
        let rows = CSVRows(duplicates.stdout)
        XCTAssertEqual(rows.first, ["group", "path", "sha256"])
        XCTAssertEqual(Set(rows.dropFirst().map { $0[1] }), ["part0/0.png", "part0/copy.png"])
        let truncated = CSVRows(try DarkroomBinary.run(["inspect", "--db", db, "--list", "truncated"]).stdout)
        XCTAssertEqual(truncated.count, 2)
        XCTAssertEqual(truncated[1][0], "broken.png")
    }

    func testBadInputNamesTheProblemAndExitsNonZero() throws {
        let missing = try DarkroomBinary.run(["catalog", "/no/such/folder", "--db", "/tmp/darkroom-unused-\(UUID()).sqlite"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("/no/such/folder"), missing.stderr)
        let noDatabase = try DarkroomBinary.run(["inspect", "--db", "/no/such.sqlite"])
        XCTAssertNotEqual(noDatabase.status, 0)
        XCTAssertTrue(noDatabase.stderr.contains("/no/such.sqlite"), noDatabase.stderr)
        let badList = try DarkroomBinary.run(["catalog", "/tmp", "--jobs", "0"])
        XCTAssertNotEqual(badList.status, 0)
        XCTAssertTrue(badList.stderr.contains("--jobs"), badList.stderr)
        // The labeller's flags come together, before any work.
        for (arguments, expected) in [(["utility", "--model", "/tmp/run", "--labels", "l.csv", "--relabel"], "--labeller"),
                                      (["utility", "--model", "/tmp/run", "--labels", "l.csv", "--filter-by", "oracle"], "--filter-by"),
                                      (["generate", "--model", "/tmp/run", "--per-class", "2", "--out", "/tmp/x", "--filter", "0.5",
                                        "--filter-by", "labeller"], "--labeller"),
                                      (["generate", "--model", "/tmp/run", "--count", "2", "--out", "/tmp/x", "--labeller", "l.safetensors"], "--per-class"),
                                      (["utility", "--model", "/tmp/run", "--labels", "l.csv", "--filter-keep", "easiest"], "--filter-keep"),
                                      (["generate", "--model", "/tmp/run", "--per-class", "2", "--out", "/tmp/x", "--filter", "0.5",
                                        "--filter-keep", "hardest"], "--filter-by labeller"),
                                      (["label", "--data", "/tmp/d", "--labels", "l.csv", "--out", "o.csv", "--width", "0"], "--width"),
                                      (["label", "--data", "/tmp/d", "--labels", "l.csv", "--out", "o.csv", "--unlabelled-ratio", "0"], "--unlabelled-ratio"),
                                      (["label", "--data", "/tmp/d", "--labels", "l.csv", "--out", "o.csv", "--validation-fraction", "1"], "--validation-fraction"),
                                      (["utility", "--model", "/tmp/run", "--labels", "l.csv", "--repeats", "0"], "--repeats"),
                                      (["utility", "--model", "/tmp/run", "--labels", "l.csv", "--schedule", "step"], "--schedule"),
                                      (["utility", "--model", "/tmp/run", "--labels", "l.csv", "--filter-floor", "1"], "--filter-floor"),
                                      // No labeller, so the filter keeps the surest: a floor has nothing to bound.
                                      (["utility", "--model", "/tmp/run", "--labels", "l.csv", "--filter", "0.5", "--filter-floor", "0.7"],
                                       "--filter-floor comes with --filter-keep hardest"),
                                      (["generate", "--model", "/tmp/run", "--count", "2", "--out", "/tmp/x", "--filter", "0.5", "--filter-floor", "0.7"],
                                       "--filter-floor comes with --filter-keep hardest"),
                                      (["train", "--data", "/tmp/d", "--out", "/tmp/r", "--class-norm"], "--labels")] {
            let refused = try DarkroomBinary.run(arguments)
            XCTAssertNotEqual(refused.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(refused.stderr.contains(expected), refused.stderr)
        }
    }

    func testASecondCatalogProcessOnTheSameDatabaseIsRefused() throws {
        let dump = try makeDump(5)
        defer { dump.remove() }
        let db = dump.file("catalog.sqlite").path
        // Hold the scan lock as a running scan would.
        let lockPath = db + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT, 0o644)
        XCTAssertEqual(flock(descriptor, LOCK_EX | LOCK_NB), 0)
        let refused = try DarkroomBinary.run(["catalog", dump.path, "--db", db])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("another darkroom process"), refused.stderr)
        flock(descriptor, LOCK_UN)
        close(descriptor)
        XCTAssertEqual(try DarkroomBinary.run(["catalog", dump.path, "--db", db]).status, 0)
    }

    /// kill -9 mid-scan, several times: the database stays sound and a re-run ends with the same
    /// counts as a scan that was never interrupted.
    func testKilledScansLeaveASoundDatabaseAndResumeToTheSameResult() throws {
        let dump = try makeDump(1500)
        let databases = try TemporaryDirectory("databases")
        defer { dump.remove(); databases.remove() }
        let reference = databases.file("reference.sqlite").path
        XCTAssertEqual(try DarkroomBinary.run(["catalog", dump.path, "--db", reference]).status, 0)
        let expected = try summary(reference)

        let db = databases.file("killed.sqlite").path
        var interrupted = 0
        for attempt in 0..<4 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DarkroomBinary.path)
            process.arguments = ["catalog", dump.path, "--db", db, "--batch-size", "16", "--jobs", "1"]
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // Kill without warning at staggered moments; each re-run starts from what was committed.
            usleep(useconds_t(100_000 + 60_000 * attempt))
            let wasRunning = process.isRunning
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if wasRunning { interrupted += 1 }
            if FileManager.default.fileExists(atPath: db) {
                XCTAssertEqual(try CatalogDatabase(path: db).integrityCheck(), "ok")
            }
        }
        XCTAssertGreaterThan(interrupted, 0, "no scan was caught mid-way")
        XCTAssertEqual(try DarkroomBinary.run(["catalog", dump.path, "--db", db]).status, 0)
        let resumed = try summary(db)
        XCTAssertEqual(NSDictionary(dictionary: resumed), NSDictionary(dictionary: expected))
    }

}

func CSVRows(_ text: String) -> [[String]] { Formats.CSV.parse(text) }
