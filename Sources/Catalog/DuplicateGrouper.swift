import GRDB
import Imaging

/// Recomputes `exact_group`, `near_pairs` and `near_group` over the whole catalogue.
struct DuplicateGrouper {
    let database: CatalogDatabase
    let threshold: Int

    func regroup() throws {
        try database.writer.write { db in
            // Exact: the lowest id with the same bytes (rows come in id order, so the first seen).
            // Only rows whose group changes are written.
            var firstWithHash: [String: Int64] = [:]
            let setGroup = try db.cachedStatement(sql: "UPDATE images SET exact_group = ? WHERE id = ?")
            let groupRows = try Row.fetchCursor(db, sql: "SELECT id, sha256, status, exact_group FROM images ORDER BY id")
            while let row = try groupRows.next() {
                let id: Int64 = row["id"], current: Int64? = row["exact_group"]
                var group: Int64? = nil
                if let sha256: String = row["sha256"], row["status"] != ImageStatus.missing.rawValue {
                    group = firstWithHash[sha256] ?? id
                    if group == id { firstWithHash[sha256] = id }
                }
                if group != current { try setGroup.execute(arguments: [group, id]) }
            }
            // Near: among decodable, informative images, one per exact group.
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, phash FROM images
                WHERE status = 'ok' AND phash IS NOT NULL AND id = exact_group AND low_information = 0
                ORDER BY id
                """)
            let ids: [Int64] = rows.map { $0["id"] }
            let hashes: [UInt64] = rows.map { PerceptualHash(hex: $0["phash"])?.bits ?? 0 }
            let pairs = NearDuplicateFinder(threshold: threshold).pairs(hashes)
            try db.execute(sql: "DELETE FROM near_pairs")
            let insert = try db.cachedStatement(sql: "INSERT INTO near_pairs (image_a, image_b, distance) VALUES (?, ?, ?)")
            for pair in pairs { try insert.execute(arguments: [ids[pair.a], ids[pair.b], pair.distance]) }

            let representatives = NearDuplicateFinder.groups(count: ids.count, pairs: pairs)
            try db.execute(sql: """
                UPDATE images SET near_group = CASE
                    WHEN status = 'ok' AND phash IS NOT NULL AND id = exact_group AND low_information = 0 THEN id END
                """)
            let update = try db.cachedStatement(sql: "UPDATE images SET near_group = ? WHERE id = ?")
            for (index, representative) in representatives.enumerated() where representative != index {
                try update.execute(arguments: [ids[representative], ids[index]])
            }
            // Exact copies beyond the first follow their first's near group.
            try db.execute(sql: """
                UPDATE images SET near_group = (SELECT first.near_group FROM images AS first WHERE first.id = images.exact_group)
                WHERE exact_group IS NOT NULL AND exact_group != id AND status = 'ok'
                """)
        }
    }
}
