import ArgumentParser
import Catalog
import Foundation
import Formats

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Summarise the catalogue, or list its files of one kind as CSV.")

    @Option(help: "The catalogue database.")
    var db = "darkroom.sqlite"

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Option(help: "List paths as CSV: a status (\(ImageStatus.allCases.map(\.rawValue).joined(separator: ", "))), exact-duplicates, near-duplicates, low-information, usable, small (short side under \(ImageShape.smallSide) px) or odd-aspect (one side over \(ImageShape.extremeAspect)× the other).")
    var list: String?

    func validate() throws {
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db): no such catalogue (run `darkroom catalog ROOT --db \(db)` first)") }
        if let list, CatalogListing(argument: list) == nil {
            throw ValidationError("--list \(list): expected one of \(CatalogListing.argumentNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        let database = try CatalogDatabase(path: db)
        if let list, let listing = CatalogListing(argument: list) {
            for row in try database.listing(listing) { print(CSV.row(row), terminator: "") }
            return
        }
        let summary = try database.summary()
        if json {
            print(try Console.json(summary))
            return
        }
        print("files: \(summary.files)")
        print("by status: " + summary.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        print("by format: " + summary.byFormat.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        print("exact duplicate files: \(summary.exactDuplicateFiles)")
        print("near duplicate groups: \(summary.nearDuplicateGroups)")
        print("low information: \(summary.lowInformation)")
        print("usable: \(summary.usable)")
        print("small (short side under \(ImageShape.smallSide) px): \(summary.small)")
        print("odd aspect (one side over \(ImageShape.extremeAspect)× the other): \(summary.oddAspect)")
    }
}
