import Formats
import Foundation

/// `darkroom bench catalog`: a first scan into a fresh database, then a no-change re-scan.
public struct CatalogBenchmark: Codable, Sendable {
    public var files: Int
    public var jobs: Int
    public var firstScanSeconds: Double
    /// Of the first scan, the part spent regrouping duplicates after all files were stored.
    public var regroupSeconds: Double
    public var filesPerSecond: Double
    public var rescanSeconds: Double
    /// Re-scan time over first-scan time.
    public var rescanFraction: Double
    public var peakRSSMegabytes: Double

    enum CodingKeys: String, CodingKey {
        case files, jobs
        case firstScanSeconds = "first_scan_seconds", regroupSeconds = "regroup_seconds"
        case filesPerSecond = "files_per_s"
        case rescanSeconds = "rescan_seconds"
        case rescanFraction = "rescan_fraction"
        case peakRSSMegabytes = "peak_rss_mb"
    }

    public static func run(root: String, options: CatalogOptions) throws -> CatalogBenchmark {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try CatalogDatabase(path: directory.appendingPathComponent("bench.sqlite").path)
        let scanner = CatalogScanner(database: database, options: options)
        let first = try scanner.scan(root: root)
        let second = try scanner.scan(root: root)
        return CatalogBenchmark(files: first.filesSeen, jobs: options.jobs, firstScanSeconds: first.seconds, regroupSeconds: first.regroupSeconds,
                                filesPerSecond: first.filesPerSecond, rescanSeconds: second.seconds,
                                rescanFraction: second.seconds / max(first.seconds, 1e-9), peakRSSMegabytes: peakResidentMegabytes())
    }
}

