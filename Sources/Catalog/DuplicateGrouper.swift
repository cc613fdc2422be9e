import GRDB
import Imaging

/// Recomputes `exact_group`, `near_pairs` and `near_group` over the whole catalogue.
struct DuplicateGrouper {
    let database: CatalogDatabase
    let threshold: Int

    func regroup() throws {
        try database.writer.write { db in
            // Exact: the lowest id with the same bytes. Singletons are their own group.
            try db.execute(sql: """
                UPDATE images SET exact_group = (
                    SELECT MIN(other.id) FROM images AS other
                    WHERE other.sha256 = images.sha256 AND other.status != 'missing')
                WHERE status != 'missing' AND sha256 IS NOT NULL
                """)
            try db.execute(sql: "UPDATE images SET exact_group = NULL WHERE sha256 IS NULL OR status = 'missing'")

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
            try db.execute(sql: "UPDATE images SET near_group = NULL")
            let update = try db.cachedStatement(sql: "UPDATE images SET near_group = ? WHERE id = ?")
            for (index, representative) in representatives.enumerated() {
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
