/// Nearest-neighbour search by GEMM: ‖q − r‖² = ‖q‖² + ‖r‖² − 2·q·r, computed for a block of
/// references at a time with oneDNN's sgemm.
public enum NearestNeighbours {
    /// Squared distances [Q, R] between queries [Q, D] and references [R, D], row-major.
    public static func squaredDistances(queries: [Float], references: [Float], dimension: Int) -> [Float] {
        let queryCount = queries.count / dimension, referenceCount = references.count / dimension
        guard queryCount > 0, referenceCount > 0 else { return [] }
        var products = [Float](repeating: 0, count: queryCount * referenceCount)
        queries.withUnsafeBufferPointer { q in
            references.withUnsafeBufferPointer { r in
                products.withUnsafeMutableBufferPointer { p in
                    sgemm(transposeA: false, transposeB: true, m: queryCount, n: referenceCount, k: dimension, alpha: 1,
                          a: q.baseAddress!, lda: dimension, b: r.baseAddress!, ldb: dimension, beta: 0, c: p.baseAddress!, ldc: referenceCount)
                }
            }
        }
        let queryNorms = squaredNorms(queries, dimension: dimension), referenceNorms = squaredNorms(references, dimension: dimension)
        for i in 0..<queryCount {
            for j in 0..<referenceCount {
                products[i * referenceCount + j] = max(queryNorms[i] + referenceNorms[j] - 2 * products[i * referenceCount + j], 0)
            }
        }
        return products
    }

    /// Each row's squared norm, rows of `dimension` values.
    public static func squaredNorms(_ values: [Float], dimension: Int) -> [Float] {
        (0..<(values.count / dimension)).map { row in
            var sum: Float = 0
            for k in 0..<dimension { let v = values[row * dimension + k]; sum += v * v }
            return sum
        }
    }

    /// Lowers `nearest[i]` to the smallest squared distance from query i to any reference in this
    /// block, skipping pairs where `queryIDs[i] == referenceIDs[j]` (a point is not its own neighbour).
    /// queries [Q, D] and references [R, D], row-major.
    public static func update(queries: [Float], queryIDs: [Int], references: [Float], referenceIDs: [Int], dimension: Int,
                              nearest: inout [Float]) {
        let referenceCount = referenceIDs.count
        guard !queryIDs.isEmpty, referenceCount > 0 else { return }
        let distances = squaredDistances(queries: queries, references: references, dimension: dimension)
        for i in queryIDs.indices {
            for j in 0..<referenceCount where queryIDs[i] != referenceIDs[j] {
                let distance = distances[i * referenceCount + j]
                if distance < nearest[i] { nearest[i] = distance }
            }
        }
    }

    /// The distance (not squared) from each point of `points` [N, D] to its k-th nearest other point.
    public static func kthNeighbourDistances(_ points: [Float], dimension: Int, k: Int, block: Int = 1024) -> [Float] {
        let count = points.count / dimension
        precondition(k >= 1 && k < count, "need more than k points")
        var out = [Float](repeating: 0, count: count)
        for start in stride(from: 0, to: count, by: block) {
            let end = min(start + block, count)
            let distances = squaredDistances(queries: Array(points[start * dimension..<end * dimension]), references: points, dimension: dimension)
            for i in start..<end {
                var row = Array(distances[(i - start) * count..<(i - start + 1) * count])
                row[i] = .infinity
                // Partial selection: the k smallest, in order.
                var smallest = [Float](repeating: .infinity, count: k)
                for value in row where value < smallest[k - 1] {
                    var slot = k - 1
                    while slot > 0 && smallest[slot - 1] > value { smallest[slot] = smallest[slot - 1]; slot -= 1 }
                    smallest[slot] = value
                }
                out[i] = smallest[k - 1].squareRoot()
            }
        }
        return out
    }
}
