import Foundation
import Formats
import Recipes
import TestSupport
import XCTest

final class RecipeCLITests: XCTestCase {
    /// The messy dump's expected.csv and the catalogue agree on every file.
    func testMessyDumpIsCataloguedAsItsRecipeSays() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (scripts/install-deps installs it)")
        }
        let directory = try TemporaryDirectory("messy")
        defer { directory.remove() }
        let made = try DarkroomBinary.run(["datasets", "messy-dump", "--out", directory.path, "--pictures", "24"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let db = directory.file("c.sqlite").path
        XCTAssertEqual(try DarkroomBinary.run(["catalog", directory.file("dump").path, "--db", db, "--follow-symlinks"]).status, 0)
        var actual: [String: String] = [:]
        for status in ["ok", "corrupt", "truncated", "empty", "unsupported", "not_image"] {
            for row in CSV.parse(try DarkroomBinary.run(["inspect", "--db", db, "--list", status]).stdout).dropFirst() { actual[row[0]] = status }
        }
        let expected = CSV.parse(try String(contentsOfFile: directory.file("expected.csv").path, encoding: .utf8)).dropFirst()
        var checked = 0
        for row in expected where row[2] != "skipped" {
            XCTAssertEqual(actual[row[0]], String(row[2].prefix { $0 != " " }), "\(row[0]) (\(row[1]))")
            checked += 1
        }
        XCTAssertEqual(checked, actual.count, "every catalogued file is in expected.csv")
        let lowInformation = CSV.parse(try DarkroomBinary.run(["inspect", "--db", db, "--list", "low-information"]).stdout).dropFirst().map { $0[0] }
        XCTAssertEqual(Set(lowInformation), ["camera/2019/blank_white.png", "scans/blank_black.jpg"])
    }

    /// `--few-labels N`: the first N images of each class to train with, every other image's label
    /// held out to measure with; together they are labels.csv, by class name.
    func testFashionMNISTFewLabelsSplitsTheLabelsInTwo() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (scripts/install-deps installs it)")
        }
        let directory = try TemporaryDirectory("few-labels")
        defer { directory.remove() }
        let made = try DarkroomBinary.run(["datasets", "fashion-mnist", "--out", directory.path, "--split", "train", "--limit", "300", "--few-labels", "5"])
        XCTAssertEqual(made.status, 0, made.stderr)
        func rows(_ name: String) throws -> [[String]] { Array(CSV.parse(try String(contentsOfFile: directory.file(name).path, encoding: .utf8)).dropFirst()) }
        let all = try rows("labels.csv"), few = try rows("few-labels.csv"), held = try rows("held-out-labels.csv")
        XCTAssertEqual(few.count, 50)
        XCTAssertEqual(Dictionary(grouping: few, by: { $0[1] }).mapValues(\.count), Dictionary(uniqueKeysWithValues: FashionMNISTRecipe.classNames.map { ($0, 5) }))
        XCTAssertEqual(held.count, 250)
        XCTAssertEqual(Set(few.map { $0[0] }).intersection(held.map { $0[0] }), [])
        XCTAssertEqual(Set((few + held).map { [$0[0], $0[1]] }), Set(all.map { [$0[0], $0[2]] }), "each image once, under its class name")
        let first = all.filter { $0[2] == "Bag" }.prefix(5).map { $0[0] }
        XCTAssertEqual(few.filter { $0[1] == "Bag" }.map { $0[0] }, Array(first), "the first of each class")
        XCTAssertNotEqual(try DarkroomBinary.run(["datasets", "fashion-mnist", "--out", directory.path, "--few-labels", "0"]).status, 0)
    }
}
