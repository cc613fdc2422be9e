import Foundation
import Formats

/// `DIR/dataset.json`: what a prepared dataset holds. Keys are a contract.
public struct DatasetManifest: Codable, Equatable, Sendable {
    public struct Shard: Codable, Equatable, Sendable {
        public var file: String
        public var count: Int
    }

    public struct Skipped: Codable, Equatable, Sendable {
        public var path: String
        public var reason: String
    }

    public var formatVersion = 1
    public var size: Int
    public var channels: Int
    public var count: Int
    /// "uint8" or "float32".
    public var dtype: String
    /// How stored values map to model inputs in [-1, 1].
    public var normalization: String
    /// Shards hold (N, H, W, C); loaders yield (N, C, H, W).
    public var layout = "NHWC"
    public var sourceCatalog: String
    public var options: PrepareOptions
    public var shards: [Shard]
    public var skipped: Int
    public var skippedFiles: [Skipped]
    public var createdAt: Date
    public var darkroomVersion: String

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", size, channels, count, dtype, normalization, layout
        case sourceCatalog = "source_catalog", options, shards, skipped
        case skippedFiles = "skipped_files", createdAt = "created_at", darkroomVersion = "darkroom_version"
    }

    public static let fileName = "dataset.json"

    public static func load(from directory: String) throws -> DatasetManifest {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError.notADataset(path: directory, reason: "no \(fileName) (run `darkroom prepare` first)")
        }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(DatasetManifest.self, from: data)
        } catch {
            throw DatasetError.notADataset(path: path, reason: "\(error)")
        }
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }
}

public enum DatasetError: Error, CustomStringConvertible {
    case notADataset(path: String, reason: String)
    case refuseToReplace(path: String)
    case noImages(catalog: String)
    case allTooSmall(catalog: String, count: Int, minSize: Int)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .notADataset(let path, let reason): return "\(path): not a prepared dataset: \(reason)"
        case .refuseToReplace(let path): return "\(path): exists and is not a darkroom dataset; refusing to replace it"
        case .noImages(let catalog): return "\(catalog): no usable images (status ok, not a duplicate, not low-information)"
        case .writeFailed(let path, let reason): return "\(path): cannot write: \(reason)"
        case .allTooSmall(let catalog, let count, let minSize):
            return "\(catalog): all \(count) usable images are smaller than --min-size \(minSize) px on their shorter side; prepare a smaller --size, or pass --min-size 0 to upscale them"
        }
    }
}

public let darkroomVersion = "0.1.0"
