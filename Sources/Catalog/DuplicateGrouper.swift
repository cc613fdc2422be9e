import GRDB
import Imaging

/// Recomputes `exact_group`, `near_pairs` and `near_group` over the whole catalogue, writing only
/// the rows whose group differs from what they hold. Memory: rows stream past in SQL order; only
/// the near-duplicate candidates' ids and hashes (16 bytes each) and the changes are held.
struct DuplicateGrouper {
    let database: CatalogDatabase
    let threshold: Int

    func regroup() throws {
        try database.writer.write { db in
            try regroupExact(db)
            try regroupNear(db)
        }
    }

    /// Exact: the lowest live id with the same bytes. Sorted by hash, each run of equal hashes
    /// is a group and its first row (lowest id) names it.
    private func regroupExact(_ db: Database) throws {
        var changes: [(id: Int64, group: Int64)] = []
        let rows = try Row.fetchCursor(db, sql: """
            SELECT id, sha256, exact_group FROM images WHERE sha256 IS NOT NULL AND status != 'missing' ORDER BY sha256, id
            """)
        var runHash = "", runFirst: Int64 = 0
        while let row = try rows.next() {
            let id: Int64 = row["id"], sha256: String = row["sha256"]
            if sha256 != runHash { (runHash, runFirst) = (sha256, id) }
            if row["exact_group"] as Int64? != runFirst { changes.append((id, runFirst)) }
        }
        let setGroup = try db.cachedStatement(sql: "UPDATE images SET exact_group = ? WHERE id = ?")
        for change in changes { try setGroup.execute(bound: [.integer(change.group), .integer(change.id)], in: db) }
        try db.execute(sql: "UPDATE images SET exact_group = NULL WHERE (sha256 IS NULL OR status = 'missing') AND exact_group IS NOT NULL")
    }

    /// Near: among decodable, informative images, one per exact group (its first); the exact
    /// copies beyond the first follow their first's near group.
    private func regroupNear(_ db: Database) throws {
        var ids: [Int64] = [], hashes: [UInt64] = []
        let candidates = try Row.fetchCursor(db, sql: """
            SELECT id, phash FROM images WHERE status = 'ok' AND phash IS NOT NULL AND id = exact_group AND low_information = 0 ORDER BY id
            """)
        while let row = try candidates.next() {
            ids.append(row["id"])
            hashes.append(PerceptualHash(hex: row["phash"])?.bits ?? 0)
        }
        let pairs = NearDuplicateFinder(threshold: threshold).pairs(hashes)
        let representatives = NearDuplicateFinder.groups(count: ids.count, pairs: pairs)
        /// The near group of a candidate's id (ids are sorted: a binary search).
        func nearGroup(ofCandidate id: Int64) -> Int64? {
            var low = 0, high = ids.count
            while low < high {
                let middle = (low + high) / 2
                if ids[middle] < id { low = middle + 1 } else { high = middle }
            }
            return low < ids.count && ids[low] == id ? ids[representatives[low]] : nil
        }
        var changes: [(id: Int64, group: Int64?)] = []
        let rows = try Row.fetchCursor(db, sql: "SELECT id, status, exact_group, near_group FROM images")
        while let row = try rows.next() {
            let exactGroup: Int64? = row["exact_group"]
            let wanted = row["status"] == ImageStatus.ok.rawValue ? exactGroup.flatMap(nearGroup(ofCandidate:)) : nil
            if row["near_group"] as Int64? != wanted { changes.append((row["id"], wanted)) }
        }
        let setGroup = try db.cachedStatement(sql: "UPDATE images SET near_group = ? WHERE id = ?")
        for change in changes { try setGroup.execute(bound: [.integer(change.group), .integer(change.id)], in: db) }

        try db.execute(sql: "DELETE FROM near_pairs")
        let insert = try db.cachedStatement(sql: "INSERT INTO near_pairs (image_a, image_b, distance) VALUES (?, ?, ?)")
        for pair in pairs { try insert.execute(bound: [.integer(ids[pair.a]), .integer(ids[pair.b]), .integer(pair.distance)], in: db) }
    }
}
