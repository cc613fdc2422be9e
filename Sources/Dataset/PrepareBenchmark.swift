import Catalog
import Formats
import Foundation

/// `darkroom bench prepare`: decode + fit + normalise + write shards into a scratch folder.
public struct PrepareBenchmark: Codable, Sendable {
    public var images: Int
    public var jobs: Int
    public var decode: DecodeMode
    public var seconds: Double
    public var imagesPerSecond: Double
    public var peakRSSMegabytes: Double

    enum CodingKeys: String, CodingKey {
        case images, jobs, decode, seconds
        case imagesPerSecond = "images_per_s"
        case peakRSSMegabytes = "peak_rss_mb"
    }

    public static func run(database: CatalogDatabase, options: PrepareOptions) throws -> PrepareBenchmark {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-bench-prepare-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let started = Date()
        let manifest = try DatasetPreparer(database: database, options: options).prepare(into: scratch.path)
        let seconds = Date().timeIntervalSince(started)
        return PrepareBenchmark(images: manifest.count, jobs: options.jobs, decode: options.decodeMode, seconds: seconds,
                                imagesPerSecond: Double(manifest.count) / seconds, peakRSSMegabytes: peakResidentMegabytes())
    }
}
