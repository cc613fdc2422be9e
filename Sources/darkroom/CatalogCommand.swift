import ArgumentParser
import Catalog
import Foundation
import Imaging

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Walk a folder of images and record every file in the SQLite catalogue (incremental).")

    @Argument(help: "The folder to catalogue.")
    var root: String

    @Option(help: "The catalogue database.")
    var db = "darkroom.sqlite"

    @Option(help: "Files inspected in parallel (default: the number of cores).")
    var jobs = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Follow symbolic links (loops are detected and skipped).")
    var followSymlinks = false

    @Option(help: "Images with more pixels are recorded as too_large and never decoded.")
    var maxPixels = 89_478_485

    @Option(help: "Perceptual-hash distance (bits) at or below which two images are near duplicates.")
    var nearThreshold = 4

    @Option(help: "Files committed per transaction: the most an interruption can lose.")
    var batchSize = 512

    @Option(help: "Colour under transparent pixels for statistics and hashes: white, black or R,G,B (use prepare's).")
    var background = "white"

    @Flag(help: "Print the scan report as JSON on stdout.")
    var json = false

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be at least 1") }
        guard (0..<64).contains(nearThreshold) else { throw ValidationError("--near-threshold must be in 0...63") }
        guard PixelImage.parseColor(background) != nil else { throw ValidationError("--background must be white, black or R,G,B (0-255)") }
    }

    func run() throws {
        let database = try CatalogDatabase(path: db)
        let options = CatalogOptions(jobs: jobs, followSymlinks: followSymlinks, maxPixels: maxPixels,
                                     nearThreshold: nearThreshold, batchSize: batchSize, background: PixelImage.parseColor(background)!)
        let report = try CatalogScanner(database: database, options: options).scan(root: root) { seen in
            Console.progress("catalog: \(seen) files")
        }
        Console.endProgress()
        for warning in report.warnings { Console.note("warning: \(warning)") }
        if json {
            print(try Console.json(report))
        } else {
            Console.note(String(format: "catalogued %d files in %.1fs (%.0f files/s): %d inspected, %d unchanged, %d missing; database %@",
                                report.filesSeen, report.seconds, report.filesPerSecond, report.filesProcessed,
                                report.filesUnchanged, report.filesMissing, db))
            let summary = try database.summary()
            let statuses = summary.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            Console.note("status: \(statuses); exact duplicates \(summary.exactDuplicateFiles), near-duplicate groups \(summary.nearDuplicateGroups), low information \(summary.lowInformation), usable \(summary.usable); small \(summary.small), odd aspect \(summary.oddAspect) (inspect --list small / odd-aspect)")
        }
    }
}
