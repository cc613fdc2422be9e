import Foundation
import Formats
import NN

/// One mode-coverage bin: the share of real and of synthetic images whose nearest centre it is.
public struct CoverageBin: Codable, Sendable, Equatable {
    public var realShare: Double
    public var syntheticShare: Double
    /// Two-proportion z statistic (synthetic − real, pooled standard error).
    public var z: Double
    /// |z| above the two-sided 5% level (1.96).
    public var significant: Bool

    public init(realShare: Double, syntheticShare: Double, z: Double, significant: Bool) {
        self.realShare = realShare
        self.syntheticShare = syntheticShare
        self.z = z
        self.significant = significant
    }

    enum CodingKeys: String, CodingKey { case realShare = "real_share", syntheticShare = "synthetic_share", z, significant }
}

/// Number of statistically different bins (NDB, Richardson & Weiss 2018): k-means on real images
/// in pixel space; each real and synthetic image goes to its nearest centre; a bin counts when
/// the two shares differ at the 5% level. A generator that drops modes empties some bins and
/// overfills others; a faithful one leaves about 5% of bins significant by chance.
public struct ModeBins: Sendable {
    public let dimension: Int
    /// K × dimension centres, in [-1, 1] pixel units (each a thumbnail of its bin).
    public let centres: [Float]
    public let realCounts: [Int]
    public var count: Int { realCounts.count }

    /// k-means (k-means++ seeding, Lloyd's iterations) on real images [N, dimension].
    public init(real: [Float], dimension: Int, bins: Int, seed: UInt64, iterations: Int = 20) {
        let n = real.count / dimension
        precondition(bins >= 2 && bins <= n, "need at least as many images as bins")
        self.dimension = dimension
        var random = SeededRandom(seed: seed)
        var centres = [Float](repeating: 0, count: bins * dimension)
        // k-means++: each next centre drawn with probability proportional to squared distance.
        let first = Int(random.next() % UInt64(n))
        centres.replaceSubrange(0..<dimension, with: real[first * dimension..<(first + 1) * dimension])
        var nearest = [Float](repeating: .infinity, count: n)
        for k in 1..<bins {
            let previous = Array(centres[(k - 1) * dimension..<k * dimension])
            let distances = NearestNeighbours.squaredDistances(queries: real, references: previous, dimension: dimension)
            for i in 0..<n { nearest[i] = min(nearest[i], distances[i]) }
            let total = nearest.reduce(0.0) { $0 + Double($1) }
            var target = Double(random.nextUniform()) * total, chosen = n - 1
            for i in 0..<n { target -= Double(nearest[i]); if target <= 0 { chosen = i; break } }
            centres.replaceSubrange(k * dimension..<(k + 1) * dimension, with: real[chosen * dimension..<(chosen + 1) * dimension])
        }
        var assignment = ModeBins.assign(real, centres: centres, dimension: dimension)
        for _ in 0..<iterations {
            var sums = [Double](repeating: 0, count: bins * dimension), sizes = [Int](repeating: 0, count: bins)
            for i in 0..<n {
                sizes[assignment[i]] += 1
                let base = assignment[i] * dimension
                for d in 0..<dimension { sums[base + d] += Double(real[i * dimension + d]) }
            }
            for k in 0..<bins where sizes[k] > 0 {
                for d in 0..<dimension { centres[k * dimension + d] = Float(sums[k * dimension + d] / Double(sizes[k])) }
            }
            let next = ModeBins.assign(real, centres: centres, dimension: dimension)
            if next == assignment { break }
            assignment = next
        }
        self.centres = centres
        realCounts = (0..<bins).map { k in assignment.lazy.filter { $0 == k }.count }
    }

    /// The nearest centre of each image [N, dimension].
    public static func assign(_ images: [Float], centres: [Float], dimension: Int) -> [Int] {
        let bins = centres.count / dimension
        let distances = NearestNeighbours.squaredDistances(queries: images, references: centres, dimension: dimension)
        return (0..<(images.count / dimension)).map { i in
            var best = 0
            for k in 1..<bins where distances[i * bins + k] < distances[i * bins + best] { best = k }
            return best
        }
    }

    /// The bins of synthetic images against the real ones, and how many differ significantly.
    public func compare(synthetic: [Float]) -> (ndb: Int, bins: [CoverageBin]) {
        let assignment = ModeBins.assign(synthetic, centres: centres, dimension: dimension)
        let realTotal = Double(realCounts.reduce(0, +)), syntheticTotal = Double(assignment.count)
        var syntheticCounts = [Int](repeating: 0, count: count)
        for bin in assignment { syntheticCounts[bin] += 1 }
        let bins = (0..<count).map { k -> CoverageBin in
            let real = Double(realCounts[k]) / realTotal, fake = Double(syntheticCounts[k]) / syntheticTotal
            let pooled = Double(realCounts[k] + syntheticCounts[k]) / (realTotal + syntheticTotal)
            let standardError = (pooled * (1 - pooled) * (1 / realTotal + 1 / syntheticTotal)).squareRoot()
            let z = standardError > 0 ? (fake - real) / standardError : 0
            return CoverageBin(realShare: real, syntheticShare: fake, z: z, significant: abs(z) > 1.96)
        }
        return (bins.filter(\.significant).count, bins)
    }
}
