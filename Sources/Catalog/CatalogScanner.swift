import Foundation
import GRDB
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// How to scan; the CLI's `catalog` options.
public struct CatalogOptions: Codable, Sendable {
    public var jobs: Int
    public var followSymlinks: Bool
    public var maxPixels: Int
    public var nearThreshold: Int
    /// Files per transaction: the most work an interruption can lose.
    public var batchSize: Int
    /// RGB composited under transparent pixels before statistics and hashing (prepare's default).
    public var background: [UInt8]

    public init(jobs: Int = ProcessInfo.processInfo.activeProcessorCount, followSymlinks: Bool = false,
                maxPixels: Int = 89_478_485, nearThreshold: Int = 4, batchSize: Int = 512, background: [UInt8] = [255, 255, 255]) {
        self.jobs = max(1, jobs)
        self.followSymlinks = followSymlinks
        self.maxPixels = maxPixels
        self.nearThreshold = nearThreshold
        self.batchSize = max(1, batchSize)
        self.background = background
    }
}

/// What one scan did.
public struct ScanReport: Codable, Sendable {
    public var root: String
    public var scanId: Int64
    public var filesSeen = 0
    public var filesProcessed = 0
    public var filesUnchanged = 0
    public var filesMissing = 0
    public var skippedSymlinks = 0
    public var warnings: [String] = []
    public var seconds = 0.0
    /// Of `seconds`, the time spent recomputing duplicate groups after the files were stored.
    public var regroupSeconds = 0.0
    public var filesPerSecond: Double { seconds > 0 ? Double(filesSeen) / seconds : 0 }
}

/// Walks a root and brings its rows in `images` up to date: new and changed files are inspected
/// (in parallel), unchanged ones (same size and mtime) are only marked seen, vanished ones become
/// `missing`. Each batch commits in one transaction, so an interrupted scan keeps its progress and
/// a re-run finishes it. Then exact and near-duplicate groups are recomputed.
public final class CatalogScanner {
    public let database: CatalogDatabase
    public let options: CatalogOptions

    public init(database: CatalogDatabase, options: CatalogOptions = CatalogOptions()) {
        self.database = database
        self.options = options
    }

    /// `progress` is called after each batch with the number of files seen so far.
    @discardableResult
    public func scan(root: String, progress: ((Int) -> Void)? = nil) throws -> ScanReport {
        let started = Date()
        let rootPath = URL(fileURLWithPath: root).standardizedFileURL.path
        let lock = try ScanLock(database: database)
        defer { lock.release() }
        let ownFiles = database.path.map { path -> [String] in
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            return ["", "-wal", "-shm", "-journal", ".lock"].map { absolute + $0 }
        } ?? []
        var walker = try FileWalker(root: rootPath, followSymlinks: options.followSymlinks, excluding: ownFiles)

        let optionsJSON = String(decoding: try JSONEncoder().encode(options), as: UTF8.self)
        let (rootId, scanId, guesses) = try database.writer.write { db -> (Int64, Int64, GroupGuesses) in
            var rootRecord = try RootRecord.filter(Column("path") == rootPath).fetchOne(db)
                ?? RootRecord(id: nil, path: rootPath, firstScannedAt: started, lastScannedAt: started)
            rootRecord.lastScannedAt = started
            try rootRecord.save(db)
            var scan = ScanRecord(id: nil, rootId: rootRecord.id!, startedAt: started, finishedAt: nil, filesSeen: 0,
                                  filesProcessed: 0, filesUnchanged: 0, filesMissing: 0, options: optionsJSON)
            try scan.insert(db)
            return (rootRecord.id!, scan.id!, try GroupGuesses(db))
        }
        var report = ScanReport(root: rootPath, scanId: scanId)
        // A root with no rows yet (a first scan) has nothing to look up per batch.
        let knownRoot = try database.writer.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM images WHERE root_id = ?)", arguments: [rootId]) ?? true
        }
        let inspector = FileInspector(maxPixels: options.maxPixels, background: options.background)
        let reinspectPNGs = try backgroundChanged(rootId: rootId, scanId: scanId)

        // A two-stage pipeline: while one batch is committed on the writer queue, the next is
        // inspected on all cores. Batches never share a path, so they are independent.
        let writerQueue = DispatchQueue(label: "darkroom.catalog.writer")
        let writes = DispatchGroup()
        let writeError = ErrorBox()
        var batch: [WalkedFile] = []
        batch.reserveCapacity(options.batchSize)
        func flush() throws {
            guard !batch.isEmpty else { return }
            let inspected = try inspect(batch, rootId: rootId, knownRoot: knownRoot, reinspectPNGs: reinspectPNGs, inspector: inspector)
            batch.removeAll(keepingCapacity: true)
            writes.wait()
            if let error = writeError.value { throw error }
            writerQueue.async(group: writes) {
                do { try self.store(inspected, rootId: rootId, scanId: scanId, guesses: guesses) } catch { writeError.value = error }
            }
            report.filesSeen += inspected.files.count
            report.filesProcessed += inspected.toInspect.count
            report.filesUnchanged += inspected.files.count - inspected.toInspect.count
            progress?(report.filesSeen)
        }
        while let file = walker.next() {
            batch.append(file)
            if batch.count == options.batchSize { try flush() }
        }
        try flush()
        writes.wait()
        if let error = writeError.value { throw error }
        report.skippedSymlinks = walker.skippedSymlinks
        report.warnings = walker.warnings

        try database.writer.write { db in
            try db.execute(sql: """
                UPDATE images SET status = 'missing', error = 'not found in scan ' || ?, exact_group = NULL, near_group = NULL
                WHERE root_id = ? AND seen_scan_id != ? AND status != 'missing'
                """, arguments: [scanId, rootId, scanId])
            report.filesMissing = db.changesCount
        }
        let groupsStale = try !groupsAreCurrent(scanId: scanId)
        if report.filesProcessed > 0 || report.filesMissing > 0 || groupsStale {
            let regroupStarted = Date()
            try DuplicateGrouper(database: database, threshold: options.nearThreshold).regroup()
            report.regroupSeconds = Date().timeIntervalSince(regroupStarted)
        }
        report.seconds = Date().timeIntervalSince(started)
        try database.writer.write { db in
            try db.execute(sql: """
                UPDATE scans SET finished_at = ?, files_seen = ?, files_processed = ?, files_unchanged = ?, files_missing = ?
                WHERE id = ?
                """, arguments: [Date(), report.filesSeen, report.filesProcessed, report.filesUnchanged, report.filesMissing, scanId])
        }
        return report
    }

    /// Groups are stale when an earlier scan was interrupted after committing rows but before
    /// regrouping: a scan newer than the last finished one never finished. (Rows carry their
    /// groups' first guesses from the moment they are stored; NULL groups on live rows are how
    /// catalogues written by earlier versions show it.)
    private func groupsAreCurrent(scanId: Int64) throws -> Bool {
        try database.writer.read { db in
            let interrupted = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM scans WHERE finished_at IS NULL AND id != ?
                    AND id > COALESCE((SELECT MAX(id) FROM scans WHERE finished_at IS NOT NULL), 0)
                """, arguments: [scanId]) ?? 0
            let ungrouped = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM images WHERE status != 'missing' AND sha256 IS NOT NULL AND exact_group IS NULL
                """) ?? 0
            return interrupted == 0 && ungrouped == 0
        }
    }

    /// Whether the last finished scan of this root composited alpha over another colour, so its
    /// PNGs' statistics and hashes describe another image. Catalogues made before the option
    /// existed composited over black.
    private func backgroundChanged(rootId: Int64, scanId: Int64) throws -> Bool {
        struct Recorded: Decodable { var background: [UInt8]? }
        let last = try database.writer.read { db in
            try String.fetchOne(db, sql: "SELECT options FROM scans WHERE root_id = ? AND id != ? AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                                arguments: [rootId, scanId])
        }
        guard let last else { return false }
        let recorded = (try? JSONDecoder().decode(Recorded.self, from: Data(last.utf8)))?.background ?? [0, 0, 0]
        return recorded != options.background
    }

    private struct Existing { var id: Int64; var sizeBytes: Int64; var mtimeNs: Int64; var status: ImageStatus; var format: String }

    /// A batch after inspection, ready to store.
    private struct InspectedBatch {
        var files: [WalkedFile]
        var existingIds: [Int64?]
        var unchanged: [Bool]
        var toInspect: [Int]
        var facts: [FileFacts]
    }

    private func inspect(_ files: [WalkedFile], rootId: Int64, knownRoot: Bool, reinspectPNGs: Bool, inspector: FileInspector) throws -> InspectedBatch {
        // Candidates by display path (indexed), matched on the exact bytes (the real key).
        let existing = !knownRoot ? [:] : try database.writer.read { db -> [Data: Existing] in
            var rows: [Data: Existing] = [:]
            let paths = String(decoding: try JSONEncoder().encode(files.map(\.relativePath)), as: UTF8.self)
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT id, path_bytes, size_bytes, mtime_ns, status, format FROM images WHERE root_id = ? AND path IN (SELECT value FROM json_each(?))
                """, arguments: [rootId, paths])
            while let row = try cursor.next() {
                rows[row["path_bytes"]] = Existing(id: row["id"], sizeBytes: row["size_bytes"], mtimeNs: row["mtime_ns"],
                                                   status: ImageStatus(rawValue: row["status"]) ?? .corrupt, format: row["format"])
            }
            return rows
        }
        // Unreadable and missing files are always looked at again: the cause may have passed.
        // PNGs (the format with alpha) are too when the background under alpha has changed.
        let unchanged = files.map { file -> Bool in
            guard let old = existing[Data(file.relativePathBytes)], file.statError == nil else { return false }
            if reinspectPNGs && old.format == ImageFormat.png.rawValue && old.status == .ok { return false }
            return old.sizeBytes == file.sizeBytes && old.mtimeNs == file.mtimeNs && old.status != .unreadable && old.status != .missing
        }
        let toInspect = files.indices.filter { !unchanged[$0] }
        return InspectedBatch(files: files, existingIds: files.map { existing[Data($0.relativePathBytes)]?.id }, unchanged: unchanged,
                              toInspect: toInspect, facts: inspectInParallel(toInspect.map { files[$0] }, inspector: inspector))
    }

    private func store(_ batch: InspectedBatch, rootId: Int64, scanId: Int64, guesses: GroupGuesses) throws {
        try database.writer.write { db in
            let now = String.fromDatabaseValue(Date().databaseValue)  // formatted once per batch, not once per row
            let markSeen = try db.cachedStatement(sql: "UPDATE images SET seen_scan_id = ? WHERE id = ?")
            for index in batch.files.indices where batch.unchanged[index] {
                try markSeen.execute(arguments: [scanId, batch.existingIds[index]])
            }
            // One upsert for new and changed files; the row id of a known path never changes. New
            // rows get their id here, so their groups' first guesses can be written with them:
            // regrouping then rewrites only the rows whose group differs.
            let upsert = try db.cachedStatement(sql: """
                INSERT INTO images (id, root_id, path, path_bytes, size_bytes, mtime, mtime_ns, sha256, format, width, height, channels,
                                    bit_depth, status, error, phash, mean, std, entropy, low_information,
                                    exact_group, near_group, seen_scan_id, processed_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (root_id, path_bytes) DO UPDATE SET
                    path = excluded.path, size_bytes = excluded.size_bytes, mtime = excluded.mtime, mtime_ns = excluded.mtime_ns,
                    sha256 = excluded.sha256, format = excluded.format, width = excluded.width, height = excluded.height,
                    channels = excluded.channels, bit_depth = excluded.bit_depth, status = excluded.status,
                    error = excluded.error, phash = excluded.phash, mean = excluded.mean, std = excluded.std,
                    entropy = excluded.entropy, low_information = excluded.low_information,
                    exact_group = excluded.exact_group, near_group = excluded.near_group, seen_scan_id = excluded.seen_scan_id,
                    processed_at = excluded.processed_at
                """)
            for (position, index) in batch.toInspect.enumerated() {
                let file = batch.files[index], fact = batch.facts[position]
                let (id, exactGroup, nearGroup) = guesses.place(fact, existingId: batch.existingIds[index])
                let statistics = fact.statistics
                try upsert.execute(bound: [
                    .integer(id), .integer(rootId), .text(file.relativePath), .blob(file.relativePathBytes),
                    .integer(file.sizeBytes), .real(Double(file.mtimeNs) / 1e9), .integer(file.mtimeNs),
                    .text(fact.sha256), .text(fact.format.rawValue), .integer(fact.width), .integer(fact.height),
                    .integer(fact.channels), .integer(fact.bitDepth), .text(fact.status.rawValue), .text(fact.error),
                    .text(fact.phash?.hex), .real(statistics?.mean), .real(statistics?.standardDeviation), .real(statistics?.entropy),
                    .integer(statistics?.isLowInformation ?? false ? 1 : 0), .integer(exactGroup),
                    .integer(nearGroup), .integer(scanId), .text(now),
                ], in: db)
            }
            try db.execute(sql: "UPDATE scans SET files_seen = files_seen + ?, files_processed = files_processed + ?, files_unchanged = files_unchanged + ? WHERE id = ?",
                           arguments: [batch.files.count, batch.toInspect.count, batch.files.count - batch.toInspect.count, scanId])
        }
    }

    private func inspectInParallel(_ files: [WalkedFile], inspector: FileInspector) -> [FileFacts] {
        var results = [FileFacts](repeating: FileFacts(), count: files.count)
        guard !files.isEmpty else { return results }
        // At most `jobs` threads; small chunks handed out as threads free up, so one slow file
        // does not leave the other cores idle at the end of a batch.
        let chunk = 8, chunks = (files.count + chunk - 1) / chunk
        let threads = DispatchSemaphore(value: options.jobs)
        results.withUnsafeMutableBufferPointer { output in
            // Each chunk writes only its own indices, so the buffer needs no lock.
            nonisolated(unsafe) let output = output
            DispatchQueue.concurrentPerform(iterations: chunks) { part in
                threads.wait()
                defer { threads.signal() }
                for index in part * chunk..<min(part * chunk + chunk, files.count) {
                    output[index] = inspector.inspect(files[index])
                }
            }
        }
        return results
    }
}

/// Ids for a scan's new rows (only one process writes: the scan lock) and the writer's first
/// guesses at a stored row's groups: each new row heads its own exact group,
/// and its own near group when it is a near-duplicate candidate. On a dump of distinct files every
/// guess is right, so regrouping rewrites only copies and near-duplicate members; it stays the
/// authority either way. (No map from hashes to rows here: the scan's memory stays flat.)
final class GroupGuesses {
    private var nextId: Int64

    init(_ db: Database) throws {
        let lastId = try Int64.fetchOne(db, sql: """
            SELECT MAX(COALESCE((SELECT MAX(id) FROM images), 0), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'images'), 0))
            """) ?? 0
        nextId = lastId + 1
    }

    /// The id to insert with (nil for a known path: the upsert keeps its id) and the two guesses.
    func place(_ fact: FileFacts, existingId: Int64?) -> (id: Int64?, exactGroup: Int64?, nearGroup: Int64?) {
        let id = existingId ?? nextId
        if existingId == nil { nextId += 1 }
        let newId = existingId == nil ? id : nil
        guard fact.sha256 != nil else { return (newId, nil, nil) }
        let candidate = fact.status == .ok && fact.phash != nil && !(fact.statistics?.isLowInformation ?? false)
        return (newId, id, candidate ? id : nil)
    }
}

/// The writer queue's first error, read by the scanning thread after waiting for the queue.
private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    var value: Error? {
        get { lock.withLock { stored } }
        set { lock.withLock { if stored == nil { stored = newValue } } }
    }
}

/// One scanning process per database at a time: an advisory lock on DATABASE.lock, held for the
/// scan. A second process is refused at once with a clear message rather than interleaving.
struct ScanLock {
    private let descriptor: Int32

    init(database: CatalogDatabase) throws {
        guard let path = database.path else { descriptor = -1; return }
        let lockPath = path + ".lock"
        descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CatalogError.cannotOpen(path: lockPath, reason: String(cString: strerror(errno))) }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            close(descriptor)
            throw CatalogError.busy(path: path)
        }
    }

    func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
