import Foundation
import GRDB
import GRDBSQLite

/// Why the catalogue could not be opened or used.
public enum CatalogError: Error, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case notADirectory(path: String)
    case busy(path: String)
    case noSuchRoot(path: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open catalogue \(path): \(reason)"
        case .notADirectory(let path): return "\(path): not a directory"
        case .busy(let path): return "\(path): another darkroom process is cataloguing into this database; try again when it has finished"
        case .noSuchRoot(let path): return "\(path): this root has never been catalogued"
        }
    }
}

/// The SQLite catalogue. One type owns the connection; the schema lives in named migrations that
/// are never edited once released (add "v2", "v3", … instead).
public final class CatalogDatabase: @unchecked Sendable {
    public let writer: any DatabaseWriter
    /// Where the database lives; nil in memory.
    public let path: String?

    /// Opens (creating if needed) a database file in WAL mode and migrates it.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL + NORMAL: a commit is durable against process crashes, and fsyncs only at checkpoints.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            writer = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw CatalogError.cannotOpen(path: path, reason: "\(error)")
        }
        self.path = path
        try CatalogDatabase.migrator.migrate(writer)
    }

    /// An in-memory database, for tests.
    public init() throws {
        writer = try DatabaseQueue()
        path = nil
        try CatalogDatabase.migrator.migrate(writer)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "roots") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("path", .text).notNull().unique()
                t.column("first_scanned_at", .datetime).notNull()
                t.column("last_scanned_at", .datetime).notNull()
            }
            try db.create(table: "scans") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("root_id", .integer).notNull().indexed().references("roots")
                t.column("started_at", .datetime).notNull()
                t.column("finished_at", .datetime)
                t.column("files_seen", .integer).notNull().defaults(to: 0)
                t.column("files_processed", .integer).notNull().defaults(to: 0)
                t.column("files_unchanged", .integer).notNull().defaults(to: 0)
                t.column("files_missing", .integer).notNull().defaults(to: 0)
                t.column("options", .text).notNull()
            }
            try db.create(table: "images") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("root_id", .integer).notNull().references("roots")  // indexed by images_root_path
                t.column("path", .text).notNull()
                t.column("path_bytes", .blob).notNull()
                t.column("size_bytes", .integer).notNull()
                t.column("mtime", .double).notNull()
                t.column("mtime_ns", .integer).notNull()
                t.column("sha256", .text)
                t.column("format", .text).notNull()
                t.column("width", .integer)
                t.column("height", .integer)
                t.column("channels", .integer)
                t.column("bit_depth", .integer)
                t.column("status", .text).notNull().indexed()
                t.column("error", .text)
                t.column("phash", .text)
                t.column("mean", .double)
                t.column("std", .double)
                t.column("entropy", .double)
                t.column("low_information", .boolean).notNull().defaults(to: false)
                t.column("exact_group", .integer)
                t.column("near_group", .integer)
                t.column("seen_scan_id", .integer).notNull()
                t.column("processed_at", .datetime).notNull()
                t.uniqueKey(["root_id", "path_bytes"])
            }
            try db.create(index: "images_sha256", on: "images", columns: ["sha256"])
            // Re-scans look rows up by (root, display path), then match the exact bytes.
            try db.create(index: "images_root_path", on: "images", columns: ["root_id", "path"])
            // Rebuilt whole by every regrouping (hundreds of thousands of rows on small, similar
            // images), so no foreign-key checks per row; image_a and image_b are images.id values.
            try db.create(table: "near_pairs", options: [.withoutRowID]) { t in
                t.column("image_a", .integer).notNull()
                t.column("image_b", .integer).notNull()
                t.column("distance", .integer).notNull()
                t.primaryKey(["image_a", "image_b"])
                t.check(sql: "image_a < image_b")
            }
        }
        migrator.registerMigration("v2") { db in
            // One row per pipeline stage run: what it was asked (its fingerprint) and whether it finished.
            try db.create(table: "stage_runs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("pipeline", .text).notNull()
                t.column("stage", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("arguments", .text).notNull()
                t.column("started_at", .datetime).notNull()
                t.column("finished_at", .datetime)
            }
            try db.create(index: "stage_runs_lookup", on: "stage_runs", columns: ["pipeline", "stage"])
        }
        migrator.registerMigration("v3") { db in
            // Random 64-character keys put every insert on a different page of this index: it
            // dirtied most of its pages per batch and made a first scan ~25% slower, and nothing
            // looks rows up by hash (regrouping reads all rows in id order).
            try db.drop(index: "images_sha256")
        }
        return migrator
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    public func integrityCheck() throws -> String {
        try writer.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }
}

/// A value bound straight to SQLite (`Statement.execute(bound:in:)`).
enum BoundValue {
    case integer(Int64), real(Double), text(String), blob([UInt8]), null

    static func integer(_ value: Int?) -> BoundValue { value.map { .integer(Int64($0)) } ?? .null }
    static func integer(_ value: Int64?) -> BoundValue { value.map { .integer($0) } ?? .null }
    static func real(_ value: Double?) -> BoundValue { value.map { .real($0) } ?? .null }
    static func text(_ value: String?) -> BoundValue { value.map { .text($0) } ?? .null }
}

extension Statement {
    /// Binds the values straight to SQLite and steps once: for the per-file upserts and the bulk
    /// inserts of regrouping, where boxing every value for GRDB cost more than the insert.
    func execute(bound values: [BoundValue], in db: Database) throws {
        let statement = sqliteStatement, transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        sqlite3_reset(statement)
        for (index, value) in values.enumerated() {
            let slot = Int32(index + 1)
            switch value {
            case .integer(let number): sqlite3_bind_int64(statement, slot, number)
            case .real(let number): sqlite3_bind_double(statement, slot, number)
            case .text(let text): sqlite3_bind_text(statement, slot, text, -1, transient)
            case .blob(let bytes):
                if bytes.isEmpty {
                    sqlite3_bind_zeroblob(statement, slot, 0)
                } else {
                    bytes.withUnsafeBytes { _ = sqlite3_bind_blob(statement, slot, $0.baseAddress, Int32($0.count), transient) }
                }
            case .null: sqlite3_bind_null(statement, slot)
            }
        }
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: sql)
        }
    }
}
