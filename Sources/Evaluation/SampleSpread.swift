import Dataset
import Foundation
import NN

/// Nearest-neighbour distances (root mean square per pixel, in [-1, 1] units) from generated
/// samples to the training set, and, as the scale to read them against, from real training
/// images to the rest of the training set. Samples much closer to the training set than real
/// images are to each other suggest memorisation.
public struct Memorisation: Codable, Sendable {
    public var samples: Int
    public var sampleDistanceMin: Float
    public var sampleDistanceMedian: Float
    public var sampleDistanceMean: Float
    public var realDistanceMedian: Float
    /// sample median / real median: about 1 or more is healthy; far below 1 means copies.
    public var medianRatio: Float

    public init(samples: Int, sampleDistanceMin: Float, sampleDistanceMedian: Float, sampleDistanceMean: Float, realDistanceMedian: Float, medianRatio: Float) {
        self.samples = samples
        self.sampleDistanceMin = sampleDistanceMin
        self.sampleDistanceMedian = sampleDistanceMedian
        self.sampleDistanceMean = sampleDistanceMean
        self.realDistanceMedian = realDistanceMedian
        self.medianRatio = medianRatio
    }

    enum CodingKeys: String, CodingKey {
        case samples, sampleDistanceMin = "sample_nn_distance_min", sampleDistanceMedian = "sample_nn_distance_median"
        case sampleDistanceMean = "sample_nn_distance_mean", realDistanceMedian = "real_nn_distance_median", medianRatio = "median_ratio"
    }
}

/// How varied the samples are: each sample's nearest-neighbour distance among the other
/// samples against each real image's among the same number of other real images, and the
/// samples' own pixel spread. A collapsed generator draws near-copies of a few images; a
/// frozen one, flat images: both are named in `verdict`, and `train` warns loudly.
public struct Diversity: Codable, Sendable {
    public var sampleDistanceMedian: Float
    public var realDistanceMedian: Float
    /// sample median / real median: near 1 is as varied as the data; far below 1 is collapse.
    public var ratio: Float
    /// Mean per-image standard deviation of pixel values, samples and real images.
    public var samplePixelSpread: Float
    public var realPixelSpread: Float
    /// `ok`, `low` (ratio under 0.6), `collapsed` (under 0.3) or `flat` (samples' pixel spread
    /// under a fifth of the real images'). A ratio well above 1 is no collapse but no praise
    /// either: noisy samples are far from each other too (read it with `memorisation`).
    public var verdict: String
    public var message: String

    enum CodingKeys: String, CodingKey {
        case sampleDistanceMedian = "sample_nn_distance_median", realDistanceMedian = "real_nn_distance_median", ratio
        case samplePixelSpread = "sample_pixel_std", realPixelSpread = "real_pixel_std", verdict, message
    }

    public var isHealthy: Bool { verdict == "ok" }

    public init(sampleDistanceMedian: Float, realDistanceMedian: Float, samplePixelSpread: Float, realPixelSpread: Float) {
        self.sampleDistanceMedian = sampleDistanceMedian
        self.realDistanceMedian = realDistanceMedian
        self.samplePixelSpread = samplePixelSpread
        self.realPixelSpread = realPixelSpread
        ratio = realDistanceMedian > 0 ? sampleDistanceMedian / realDistanceMedian : .nan
        let figures = String(format: "samples' nearest-neighbour distance among themselves %.3f vs %.3f among real images (ratio %.2f)",
                             sampleDistanceMedian, realDistanceMedian, ratio)
        if samplePixelSpread < 0.2 * realPixelSpread {
            verdict = "flat"
            message = String(format: "FROZEN GENERATOR: samples are flat images (pixel spread %.3f vs %.3f in real images); the generator has not learnt the data. ",
                             samplePixelSpread, realPixelSpread) + figures
        } else if ratio < 0.3 {
            verdict = "collapsed"
            message = "MODE COLLAPSE: samples are near-copies of each other; " + figures
        } else if ratio < 0.6 {
            verdict = "low"
            message = "low diversity: " + figures
        } else {
            verdict = "ok"
            message = (ratio > 2 ? "no collapse, but samples are more spread than real images (noisy or unlike the data?): " : "no collapse: ") + figures
        }
    }
}

/// The memorisation and diversity checks on samples, against a prepared dataset.
public enum SampleSpread {
    /// samples: N × C × S × S values in [-1, 1], at the dataset's size and channels.
    public static func measure(samples: [Float], dataset: String, seed: UInt64) throws -> (memorisation: Memorisation, diversity: Diversity) {
        let loader = try BatchLoader(directory: dataset, batchSize: 1024, seed: seed, dropLast: false)
        let dimension = loader.sampleLength
        let sampleCount = samples.count / dimension

        // Real queries: the first `sampleCount` rows of the dataset.
        let realCount = min(sampleCount, loader.manifest.count)
        var realQueries = [Float](repeating: 0, count: realCount * dimension)
        var sampleNearest = [Float](repeating: .infinity, count: sampleCount)
        var realNearest = [Float](repeating: .infinity, count: realCount)
        let sampleIDs = Array(-sampleCount..<0)
        for batch in loader.epoch(0) {
            for (slot, row) in batch.rows.enumerated() where row < realCount {
                realQueries.replaceSubrange(row * dimension..<(row + 1) * dimension, with: batch.images[slot * dimension..<(slot + 1) * dimension])
            }
            NearestNeighbours.update(queries: samples, queryIDs: sampleIDs, references: batch.images, referenceIDs: batch.rows,
                                     dimension: dimension, nearest: &sampleNearest)
        }
        // Second pass for the real queries, now that they are known.
        for batch in loader.epoch(0) {
            NearestNeighbours.update(queries: realQueries, queryIDs: Array(0..<realCount), references: batch.images, referenceIDs: batch.rows,
                                     dimension: dimension, nearest: &realNearest)
        }
        func rms(_ squared: Float) -> Float { (squared / Float(dimension)).squareRoot() }
        func median(_ values: [Float]) -> Float {
            let sorted = values.filter(\.isFinite).sorted()
            return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
        }
        let sampleDistances = sampleNearest.map(rms).sorted()
        let sampleMedian = median(sampleDistances), realMedian = median(realNearest.map(rms))
        let memorisation = Memorisation(samples: sampleCount, sampleDistanceMin: sampleDistances[0], sampleDistanceMedian: sampleMedian,
                                        sampleDistanceMean: sampleDistances.reduce(0, +) / Float(sampleDistances.count),
                                        realDistanceMedian: realMedian, medianRatio: sampleMedian / realMedian)

        // Diversity: as many samples as there are real queries, each set against itself.
        let compared = Array(samples.prefix(realCount * dimension))
        var amongSamples = [Float](repeating: .infinity, count: realCount), amongReal = [Float](repeating: .infinity, count: realCount)
        NearestNeighbours.update(queries: compared, queryIDs: Array(0..<realCount), references: compared, referenceIDs: Array(0..<realCount),
                                 dimension: dimension, nearest: &amongSamples)
        NearestNeighbours.update(queries: realQueries, queryIDs: Array(0..<realCount), references: realQueries, referenceIDs: Array(0..<realCount),
                                 dimension: dimension, nearest: &amongReal)
        func spread(_ values: [Float], _ count: Int) -> Float {
            var total: Float = 0
            for image in 0..<count {
                let pixels = values[image * dimension..<(image + 1) * dimension]
                let mean = pixels.reduce(0, +) / Float(dimension)
                total += (pixels.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(dimension)).squareRoot()
            }
            return total / Float(max(count, 1))
        }
        let diversity = Diversity(sampleDistanceMedian: median(amongSamples.map(rms)), realDistanceMedian: median(amongReal.map(rms)),
                                  samplePixelSpread: spread(compared, realCount), realPixelSpread: spread(realQueries, realCount))
        return (memorisation, diversity)
    }
}
