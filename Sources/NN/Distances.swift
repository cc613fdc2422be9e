/// Nearest-neighbour search by GEMM: ‖q − r‖² = ‖q‖² + ‖r‖² − 2·q·r, computed for a block of
/// references at a time with oneDNN's sgemm.
public enum NearestNeighbours {
    /// Lowers `nearest[i]` to the smallest squared distance from query i to any reference in this
    /// block, skipping pairs where `queryIDs[i] == referenceIDs[j]` (a point is not its own neighbour).
    /// queries [Q, D] and references [R, D], row-major.
    public static func update(queries: [Float], queryIDs: [Int], references: [Float], referenceIDs: [Int], dimension: Int,
                              nearest: inout [Float]) {
        let queryCount = queryIDs.count, referenceCount = referenceIDs.count
        guard queryCount > 0, referenceCount > 0 else { return }
        var products = [Float](repeating: 0, count: queryCount * referenceCount)
        queries.withUnsafeBufferPointer { q in
            references.withUnsafeBufferPointer { r in
                products.withUnsafeMutableBufferPointer { p in
                    sgemm(transposeA: false, transposeB: true, m: queryCount, n: referenceCount, k: dimension, alpha: 1,
                          a: q.baseAddress!, lda: dimension, b: r.baseAddress!, ldb: dimension, beta: 0, c: p.baseAddress!, ldc: referenceCount)
                }
            }
        }
        func squaredNorms(_ values: [Float], _ count: Int) -> [Float] {
            (0..<count).map { row in
                var sum: Float = 0
                for k in 0..<dimension { let v = values[row * dimension + k]; sum += v * v }
                return sum
            }
        }
        let queryNorms = squaredNorms(queries, queryCount), referenceNorms = squaredNorms(references, referenceCount)
        for i in 0..<queryCount {
            for j in 0..<referenceCount where queryIDs[i] != referenceIDs[j] {
                let distance = max(queryNorms[i] + referenceNorms[j] - 2 * products[i * referenceCount + j], 0)
                if distance < nearest[i] { nearest[i] = distance }
            }
        }
    }
}
