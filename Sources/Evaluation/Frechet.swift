import NN

/// A Gaussian fitted to features: mean [D] and covariance [D, D] (unbiased, as numpy's cov).
public struct Gaussian: Sendable {
    public let dimension: Int
    public let mean: [Double]
    public let covariance: [Double]

    /// features: N × D, row-major.
    public init(features: [Float], dimension: Int) {
        let count = features.count / dimension
        precondition(count >= 2, "a covariance needs two samples")
        var mean = [Double](repeating: 0, count: dimension)
        for row in 0..<count { for d in 0..<dimension { mean[d] += Double(features[row * dimension + d]) } }
        for d in 0..<dimension { mean[d] /= Double(count) }
        // Centred in Float for sgemm: Xᵀ·X / (N − 1).
        var centred = features
        for row in 0..<count { for d in 0..<dimension { centred[row * dimension + d] -= Float(mean[d]) } }
        var product = [Float](repeating: 0, count: dimension * dimension)
        centred.withUnsafeBufferPointer { x in
            product.withUnsafeMutableBufferPointer { c in
                sgemm(transposeA: true, transposeB: false, m: dimension, n: dimension, k: count, alpha: 1 / Float(count - 1),
                      a: x.baseAddress!, lda: dimension, b: x.baseAddress!, ldb: dimension, beta: 0, c: c.baseAddress!, ldc: dimension)
            }
        }
        self.init(mean: mean, covariance: product.map(Double.init))
    }

    public init(mean: [Double], covariance: [Double]) {
        precondition(covariance.count == mean.count * mean.count, "covariance must be D × D")
        dimension = mean.count
        self.mean = mean
        self.covariance = covariance
    }
}

public enum Frechet {
    /// d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½, the FID formula (Heusel et al. 2017).
    /// tr (Σ₁Σ₂)^½ is the sum of the square roots of the eigenvalues of Lᵀ Σ₂ L, where Σ₁ = L Lᵀ:
    /// that matrix is similar to Σ₁Σ₂ and symmetric, so a symmetric eigensolver suffices. A ridge
    /// of 1e-6 · tr Σ₁ / D keeps the Cholesky factor defined when Σ₁ is singular (fewer samples
    /// than dimensions, or features that are exactly dependent), as clean-fid's 1e-6 offset does
    /// for sqrtm; it moves the distance by far less than sampling does.
    public static func distance(_ a: Gaussian, _ b: Gaussian) -> Double {
        precondition(a.dimension == b.dimension, "Gaussians of different dimension")
        let n = a.dimension
        var meanTerm = 0.0, traceA = 0.0, traceB = 0.0
        for d in 0..<n {
            meanTerm += (a.mean[d] - b.mean[d]) * (a.mean[d] - b.mean[d])
            traceA += a.covariance[d * n + d]
            traceB += b.covariance[d * n + d]
        }
        var sigma = a.covariance
        let ridge = max(1e-6 * traceA / Double(n), 1e-300)
        for d in 0..<n { sigma[d * n + d] += ridge }
        let lower = SymmetricMatrix.cholesky(sigma, n: n)
        let middle = SymmetricMatrix.congruence(b.covariance, lower: lower, n: n)
        let root = SymmetricMatrix.eigenvalues(middle, n: n).reduce(0) { $0 + max($1, 0).squareRoot() }
        return max(meanTerm + traceA + traceB - 2 * root, 0)
    }
}

/// Dense symmetric linear algebra in Double, for matrices of a few hundred rows.
public enum SymmetricMatrix {
    /// A lower-triangular L with A = L Lᵀ for a symmetric positive-semidefinite A (row-major,
    /// n × n). Where a pivot is no more than rounding (A singular), its column is left zero:
    /// L Lᵀ still equals A to rounding, which is all `Frechet.distance` needs of it.
    public static func cholesky(_ a: [Double], n: Int) -> [Double] {
        var l = [Double](repeating: 0, count: n * n)
        let largest = (0..<n).map { a[$0 * n + $0] }.max() ?? 0
        let tolerance = 1e-12 * max(largest, 0)
        for j in 0..<n {
            var pivot = a[j * n + j]
            for k in 0..<j { pivot -= l[j * n + k] * l[j * n + k] }
            guard pivot > tolerance else { continue }
            let root = pivot.squareRoot()
            l[j * n + j] = root
            for i in (j + 1)..<n {
                var sum = a[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = sum / root
            }
        }
        return l
    }

    /// Lᵀ B L for symmetric B (Double throughout: the Fréchet distance is a small difference of large traces).
    public static func congruence(_ b: [Double], lower l: [Double], n: Int) -> [Double] {
        var t = [Double](repeating: 0, count: n * n), out = [Double](repeating: 0, count: n * n)
        b.withUnsafeBufferPointer { b in
            l.withUnsafeBufferPointer { l in
                t.withUnsafeMutableBufferPointer { t in
                    // T = B L; L is lower, so L[k][j] = 0 for j > k.
                    for i in 0..<n {
                        for k in 0..<n {
                            let value = b[i * n + k]
                            if value == 0 { continue }
                            for j in 0...k { t[i * n + j] += value * l[k * n + j] }
                        }
                    }
                }
                out.withUnsafeMutableBufferPointer { out in
                    // Lᵀ T: Lᵀ[i][k] = L[k][i], non-zero for i ≤ k.
                    for k in 0..<n {
                        for i in 0...k {
                            let value = l[k * n + i]
                            if value == 0 { continue }
                            for j in 0..<n { out[i * n + j] += value * t[k * n + j] }
                        }
                    }
                    for i in 0..<n { for j in 0..<i { let mean = (out[i * n + j] + out[j * n + i]) / 2; out[i * n + j] = mean; out[j * n + i] = mean } }
                }
            }
        }
        return out
    }

    /// Eigenvalues of a symmetric matrix, ascending: Householder reduction to tridiagonal form,
    /// then the implicit QL iteration with Wilkinson shifts (Numerical Recipes' tred2/tqli, values only).
    public static func eigenvalues(_ matrix: [Double], n: Int) -> [Double] {
        var a = matrix
        var v = [Double](repeating: 0, count: n), p = [Double](repeating: 0, count: n), w = [Double](repeating: 0, count: n)
        a.withUnsafeMutableBufferPointer { a in
            guard n > 2 else { return }
            for k in 0..<(n - 2) {
                // Reflect column k below the diagonal onto its first entry.
                var norm = 0.0
                for i in (k + 1)..<n { norm += a[i * n + k] * a[i * n + k] }
                norm = norm.squareRoot()
                if norm == 0 { continue }
                let alpha = a[(k + 1) * n + k] > 0 ? -norm : norm
                var vNorm = 0.0
                for i in (k + 1)..<n { v[i] = a[i * n + k]; if i == k + 1 { v[i] -= alpha }; vNorm += v[i] * v[i] }
                vNorm = vNorm.squareRoot()
                if vNorm == 0 { continue }
                for i in (k + 1)..<n { v[i] /= vNorm }
                // A₂₂ ← H A₂₂ H = A₂₂ − 2(v wᵀ + w vᵀ), p = A₂₂ v, w = p − (v·p) v.
                var vp = 0.0
                for i in (k + 1)..<n {
                    var sum = 0.0
                    for j in (k + 1)..<n { sum += a[i * n + j] * v[j] }
                    p[i] = sum
                    vp += v[i] * sum
                }
                for i in (k + 1)..<n { w[i] = p[i] - vp * v[i] }
                for i in (k + 1)..<n {
                    let vi = 2 * v[i], wi = 2 * w[i]
                    for j in (k + 1)..<n { a[i * n + j] -= vi * w[j] + wi * v[j] }
                }
                a[(k + 1) * n + k] = alpha
                a[k * n + k + 1] = alpha
                for i in (k + 2)..<n { a[i * n + k] = 0; a[k * n + i] = 0 }
            }
        }
        var d = (0..<n).map { a[$0 * n + $0] }
        var e = (0..<n).map { $0 + 1 < n ? a[($0 + 1) * n + $0] : 0 }
        tridiagonalEigenvalues(&d, &e)
        return d.sorted()
    }

    /// In place: d (diagonal) becomes the eigenvalues; e[i] is the entry between rows i and i + 1.
    static func tridiagonalEigenvalues(_ d: inout [Double], _ e: inout [Double]) {
        let n = d.count
        for l in 0..<n {
            var iterations = 0
            while true {
                var m = l
                while m < n - 1 {
                    let scale = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) <= Double.ulpOfOne * scale { break }
                    m += 1
                }
                if m == l { break }
                iterations += 1
                if iterations > 100 { break }
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = (g * g + 1).squareRoot()
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
                var s = 1.0, c = 1.0, p = 0.0
                var i = m - 1
                var deflated = false
                while i >= l {
                    let f = s * e[i], b = c * e[i]
                    r = (f * f + g * g).squareRoot()
                    e[i + 1] = r
                    if r == 0 {
                        d[i + 1] -= p
                        e[m] = 0
                        deflated = true
                        break
                    }
                    s = f / r
                    c = g / r
                    g = d[i + 1] - p
                    r = (d[i] - g) * s + 2 * c * b
                    p = s * r
                    d[i + 1] = g + p
                    g = c * r - b
                    i -= 1
                }
                if deflated { continue }
                d[l] -= p
                e[l] = g
                e[m] = 0
            }
        }
    }
}
