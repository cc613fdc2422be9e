import GRDB
import Imaging

/// Recomputes `exact_group`, `near_pairs` and `near_group` over the whole catalogue, in memory
/// from one pass over the rows; only rows whose group differs from what they hold are written.
struct DuplicateGrouper {
    let database: CatalogDatabase
    let threshold: Int

    private struct Image {
        var id: Int64
        var sha256: String?
        var live: Bool
        var ok: Bool
        var phash: UInt64?
        var lowInformation: Bool
        var exactGroup: Int64?
        var nearGroup: Int64?
    }

    func regroup() throws {
        try database.writer.write { db in
            var images: [Image] = []
            let rows = try Row.fetchCursor(db, sql: """
                SELECT id, sha256, status, phash, low_information, exact_group, near_group FROM images ORDER BY id
                """)
            while let row = try rows.next() {
                let status: String = row["status"]
                images.append(Image(id: row["id"], sha256: row["sha256"], live: status != ImageStatus.missing.rawValue,
                                    ok: status == ImageStatus.ok.rawValue, phash: (row["phash"] as String?).flatMap { PerceptualHash(hex: $0)?.bits },
                                    lowInformation: row["low_information"], exactGroup: row["exact_group"], nearGroup: row["near_group"]))
            }

            // Exact: the lowest live id with the same bytes (rows are in id order, so the first seen).
            var firstWithHash: [String: Int64] = [:]
            var exactGroups = [Int64?](repeating: nil, count: images.count)
            for (index, image) in images.enumerated() {
                guard let sha256 = image.sha256, image.live else { continue }
                let first = firstWithHash[sha256] ?? image.id
                if first == image.id { firstWithHash[sha256] = first }
                exactGroups[index] = first
            }

            // Near: among decodable, informative images, one per exact group.
            let candidates = images.indices.filter {
                images[$0].ok && images[$0].phash != nil && !images[$0].lowInformation && exactGroups[$0] == images[$0].id
            }
            let pairs = NearDuplicateFinder(threshold: threshold).pairs(candidates.map { images[$0].phash! })
            let representatives = NearDuplicateFinder.groups(count: candidates.count, pairs: pairs)
            var nearGroupOfId: [Int64: Int64] = [:]
            nearGroupOfId.reserveCapacity(candidates.count)
            for (position, index) in candidates.enumerated() { nearGroupOfId[images[index].id] = images[candidates[representatives[position]]].id }
            // Exact copies beyond the first follow their first's near group.
            let nearGroups = images.indices.map { index -> Int64? in
                guard images[index].ok, let exact = exactGroups[index] else { return nil }
                return nearGroupOfId[exact]
            }

            let setGroups = try db.cachedStatement(sql: "UPDATE images SET exact_group = ?, near_group = ? WHERE id = ?")
            for (index, image) in images.enumerated() where image.exactGroup != exactGroups[index] || image.nearGroup != nearGroups[index] {
                try setGroups.execute(arguments: [exactGroups[index], nearGroups[index], image.id])
            }
            try replaceNearPairs(db, pairs.map { (images[candidates[$0.a]].id, images[candidates[$0.b]].id, $0.distance) })
        }
    }

    private func replaceNearPairs(_ db: Database, _ pairs: [(a: Int64, b: Int64, distance: Int)]) throws {
        try db.execute(sql: "DELETE FROM near_pairs")
        let insert = try db.cachedStatement(sql: "INSERT INTO near_pairs (image_a, image_b, distance) VALUES (?, ?, ?)")
        for pair in pairs { try insert.execute(bound: [.integer(pair.a), .integer(pair.b), .integer(pair.distance)], in: db) }
    }
}
