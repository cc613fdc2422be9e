import Foundation
import GRDB

/// What `darkroom inspect` reports. JSON keys are a contract.
public struct CatalogSummary: Codable, Equatable, Sendable {
    public var files: Int
    public var byStatus: [String: Int]
    public var byFormat: [String: Int]
    /// Copies beyond the first of each exact-duplicate group.
    public var exactDuplicateFiles: Int
    /// Near-duplicate groups holding two or more different images (exact copies count once).
    public var nearDuplicateGroups: Int
    public var lowInformation: Int
    /// Status ok, first of its exact group, not low-information.
    public var usable: Int
    /// Decoded images whose shorter side is under `ImageShape.smallSide` pixels.
    public var small: Int
    /// Decoded images with one side more than `ImageShape.extremeAspect` times the other.
    public var oddAspect: Int

    enum CodingKeys: String, CodingKey {
        case files
        case byStatus = "by_status"
        case byFormat = "by_format"
        case exactDuplicateFiles = "exact_duplicate_files"
        case nearDuplicateGroups = "near_duplicate_groups"
        case lowInformation = "low_information"
        case usable, small
        case oddAspect = "odd_aspect"
    }
}

/// Shapes worth a warning: a training set is made of squares of one size, so images far smaller
/// than that are blown up, and very long ones lose most of themselves to a centre crop.
public enum ImageShape {
    public static let smallSide = 32
    public static let extremeAspect = 3
    static let smallCondition = "status = 'ok' AND MIN(width, height) < \(smallSide)"
    static let oddAspectCondition = "status = 'ok' AND MAX(width, height) > \(extremeAspect) * MIN(width, height)"
}

/// A usable image, as later stages need it.
public struct UsableImage: Sendable, Equatable {
    public var id: Int64
    /// Relative to its root.
    public var path: String
    public var absolutePath: String
    /// The exact bytes to open (names need not be UTF-8).
    public var absolutePathBytes: [UInt8]
    public var sha256: String
    public var nearGroup: Int64?
    public var width: Int
    public var height: Int
}

/// Which rows `inspect --list` prints.
public enum CatalogListing: Equatable, Sendable {
    case status(ImageStatus)
    case exactDuplicates
    case nearDuplicates
    case lowInformation
    case usable
    case small
    case oddAspect

    /// Parses `ok`, `corrupt`, …, `exact-duplicates`, `near-duplicates`, `low-information`, `usable`, `small`, `odd-aspect`.
    public init?(argument: String) {
        switch argument {
        case "exact-duplicates": self = .exactDuplicates
        case "near-duplicates": self = .nearDuplicates
        case "low-information": self = .lowInformation
        case "usable": self = .usable
        case "small": self = .small
        case "odd-aspect": self = .oddAspect
        default:
            guard let status = ImageStatus(rawValue: argument) else { return nil }
            self = .status(status)
        }
    }

    public static let argumentNames = ImageStatus.allCases.map(\.rawValue) + ["exact-duplicates", "near-duplicates", "low-information", "usable", "small", "odd-aspect"]
}

extension CatalogDatabase {
    public func summary() throws -> CatalogSummary {
        try writer.read { db in
            func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql) ?? 0 }
            func histogram(_ column: String) throws -> [String: Int] {
                var result: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT \(column) AS key, COUNT(*) AS n FROM images GROUP BY \(column)") {
                    result[row["key"]] = row["n"]
                }
                return result
            }
            return CatalogSummary(
                files: try count("SELECT COUNT(*) FROM images"),
                byStatus: try histogram("status"),
                byFormat: try histogram("format"),
                exactDuplicateFiles: try count("SELECT COUNT(*) FROM images WHERE exact_group IS NOT NULL AND exact_group != id"),
                nearDuplicateGroups: try count("SELECT COUNT(*) FROM (SELECT near_group FROM images WHERE near_group IS NOT NULL GROUP BY near_group HAVING COUNT(DISTINCT exact_group) > 1)"),
                lowInformation: try count("SELECT COUNT(*) FROM images WHERE low_information AND status = 'ok'"),
                usable: try count("SELECT COUNT(*) FROM images WHERE \(CatalogDatabase.usableCondition)"),
                small: try count("SELECT COUNT(*) FROM images WHERE \(ImageShape.smallCondition)"),
                oddAspect: try count("SELECT COUNT(*) FROM images WHERE \(ImageShape.oddAspectCondition)"))
        }
    }

    /// SQL for the rows `prepare` takes.
    public static let usableCondition = "images.status = 'ok' AND images.id = images.exact_group AND images.low_information = 0"

    /// The usable images, in id order.
    public func usableImages() throws -> [UsableImage] { try usableImages(after: 0, limit: -1) }

    /// One usable image of each near-duplicate group: the one with the longest shorter side (the
    /// most detail; the lowest id among equals). The same icon at 16 and 256 px keeps the 256.
    public func largestOfEachNearGroup() throws -> Set<Int64> {
        try writer.read { db in
            var chosen = Set<Int64>(), lastGroup: Int64?
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT id, near_group FROM images WHERE \(CatalogDatabase.usableCondition) AND near_group IS NOT NULL
                ORDER BY near_group, MIN(width, height) DESC, id
                """)
            while let row = try cursor.next() {
                let group: Int64 = row["near_group"]
                if group != lastGroup { chosen.insert(row["id"]); lastGroup = group }
            }
            return chosen
        }
    }

    /// How many images are usable (with `outsideNearGroupsOnly`: only those in no near-duplicate group).
    public func usableImageCount(outsideNearGroupsOnly: Bool = false) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM images WHERE \(CatalogDatabase.usableCondition)" + (outsideNearGroupsOnly ? " AND near_group IS NULL" : "")) ?? 0
        }
    }

    /// One page of the usable images in id order: those with ids above `after`, at most `limit`
    /// (-1: all). Pages keep memory flat on catalogues of any size.
    public func usableImages(after lastId: Int64, limit: Int) throws -> [UsableImage] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT images.id, images.path, images.path_bytes, roots.path AS root, images.sha256, images.near_group, images.width, images.height
                FROM images JOIN roots ON roots.id = images.root_id
                WHERE \(CatalogDatabase.usableCondition) AND images.id > ? ORDER BY images.id LIMIT ?
                """, arguments: [lastId, limit]).map { row in
                let path: String = row["path"], root: String = row["root"], bytes: Data = row["path_bytes"]
                return UsableImage(id: row["id"], path: path, absolutePath: root + "/" + path,
                                   absolutePathBytes: Array(root.utf8) + [UInt8(ascii: "/")] + Array(bytes),
                                   sha256: row["sha256"], nearGroup: row["near_group"], width: row["width"] ?? 0, height: row["height"] ?? 0)
            }
        }
    }

    /// Rows for `inspect --list`, header first. Paths are relative to their root.
    public func listing(_ listing: CatalogListing) throws -> [[String]] {
        try writer.read { db in
            func rows(_ header: [String], _ sql: String, _ arguments: StatementArguments = []) throws -> [[String]] {
                [header] + (try Row.fetchAll(db, sql: sql, arguments: arguments)).map { row in
                    header.indices.map { index -> String in
                        let value: DatabaseValue = row[index]
                        return value.isNull ? "" : (String.fromDatabaseValue(value) ?? value.description)
                    }
                }
            }
            switch listing {
            case .status(let status):
                return try rows(["path", "format", "size_bytes", "error"],
                                "SELECT path, format, size_bytes, error FROM images WHERE status = ? ORDER BY path", [status.rawValue])
            case .exactDuplicates:
                return try rows(["group", "path", "sha256"], """
                    SELECT exact_group, path, sha256 FROM images WHERE exact_group IN (
                        SELECT exact_group FROM images WHERE exact_group IS NOT NULL GROUP BY exact_group HAVING COUNT(*) > 1)
                    ORDER BY exact_group, id
                    """)
            case .nearDuplicates:
                return try rows(["group", "path", "distance"], """
                    SELECT image.near_group, image.path,
                           CASE WHEN image.id = image.near_group THEN 0 ELSE
                               COALESCE((SELECT distance FROM near_pairs
                                         WHERE (image_a = image.id AND image_b = image.near_group)
                                            OR (image_b = image.id AND image_a = image.near_group)), 0) END
                    FROM images AS image WHERE image.near_group IN (
                        SELECT near_group FROM images WHERE near_group IS NOT NULL GROUP BY near_group HAVING COUNT(DISTINCT exact_group) > 1)
                    ORDER BY image.near_group, image.id
                    """)
            case .lowInformation:
                return try rows(["path", "mean", "std", "entropy"],
                                "SELECT path, mean, std, entropy FROM images WHERE low_information AND status = 'ok' ORDER BY path")
            case .usable:
                return try rows(["path", "width", "height", "sha256"],
                                "SELECT path, width, height, sha256 FROM images WHERE \(CatalogDatabase.usableCondition) ORDER BY id")
            case .small:
                return try rows(["path", "width", "height"], "SELECT path, width, height FROM images WHERE \(ImageShape.smallCondition) ORDER BY path")
            case .oddAspect:
                return try rows(["path", "width", "height"], "SELECT path, width, height FROM images WHERE \(ImageShape.oddAspectCondition) ORDER BY path")
            }
        }
    }
}

extension CatalogDatabase {
    /// Records what a later stage learnt about files (a decode failure in `prepare`, say).
    public func updateStatuses(_ updates: [(id: Int64, status: ImageStatus, error: String)]) throws {
        try writer.write { db in
            for update in updates {
                try db.execute(sql: "UPDATE images SET status = ?, error = ? WHERE id = ?",
                               arguments: [update.status.rawValue, update.error, update.id])
            }
        }
    }
}

extension CatalogDatabase {
    /// The absolute paths of the catalogued roots.
    public func rootPaths() throws -> [String] {
        try writer.read { db in try String.fetchAll(db, sql: "SELECT path FROM roots ORDER BY id") }
    }
}
