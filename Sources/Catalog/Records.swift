import Foundation
import GRDB
import Imaging

/// What became of a file. Stored as text in `images.status`.
public enum ImageStatus: String, Codable, CaseIterable, Sendable, DatabaseValueConvertible {
    case ok, corrupt, truncated, empty, unsupported
    case notImage = "not_image"
    case tooLarge = "too_large"
    case unreadable, missing

    /// The status a decode failure stands for.
    public init(_ error: ImageDecodeError) {
        switch error {
        case .corrupt: self = .corrupt
        case .truncated: self = .truncated
        case .tooLarge: self = .tooLarge
        case .unsupported: self = .unsupported
        case .notImage: self = .notImage
        }
    }
}

/// One file under a catalogued root: a row of `images`.
public struct ImageRecord: Codable, Equatable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "images"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    public var id: Int64?
    public var rootId: Int64
    /// Relative to the root, '/'-separated (invalid UTF-8 bytes shown as `\xNN`).
    public var path: String
    /// The exact relative path bytes.
    public var pathBytes: Data
    public var sizeBytes: Int64
    /// Seconds since 1970; `mtimeNs` is the exact value compared on re-scans.
    public var mtime: Double
    public var mtimeNs: Int64
    public var sha256: String?
    public var format: String
    public var width: Int?
    public var height: Int?
    public var channels: Int?
    public var bitDepth: Int?
    public var status: ImageStatus
    public var error: String?
    public var phash: String?
    public var mean: Double?
    public var std: Double?
    public var entropy: Double?
    public var lowInformation: Bool
    public var exactGroup: Int64?
    public var nearGroup: Int64?
    public var seenScanId: Int64
    public var processedAt: Date

    public enum Columns {
        public static let id = Column("id")
        public static let rootId = Column("root_id")
        public static let path = Column("path")
        public static let status = Column("status")
        public static let sha256 = Column("sha256")
        public static let exactGroup = Column("exact_group")
        public static let nearGroup = Column("near_group")
        public static let lowInformation = Column("low_information")
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    /// Status ok, the first of its exact-duplicate group, and not low-information: what `prepare` takes.
    public var isUsable: Bool { status == .ok && exactGroup == id && !lowInformation }
}

/// A row of `near_pairs`: two images whose perceptual hashes differ in at most the threshold's bits.
public struct NearPair: Codable, Equatable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "near_pairs"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var imageA: Int64
    public var imageB: Int64
    public var distance: Int
}

struct RootRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "roots"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    var id: Int64?
    var path: String
    var firstScannedAt: Date
    var lastScannedAt: Date
    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

struct ScanRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "scans"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    var id: Int64?
    var rootId: Int64
    var startedAt: Date
    var finishedAt: Date?
    var filesSeen: Int
    var filesProcessed: Int
    var filesUnchanged: Int
    var filesMissing: Int
    var options: String
    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
