import Dataset
import Foundation
import Formats
import NN

/// RUN/summary.json: how training ended and a memorisation check.
public struct TrainingSummary: Codable, Sendable {
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

        enum CodingKeys: String, CodingKey {
            case samples, sampleDistanceMin = "sample_nn_distance_min", sampleDistanceMedian = "sample_nn_distance_median"
            case sampleDistanceMean = "sample_nn_distance_mean", realDistanceMedian = "real_nn_distance_median", medianRatio = "median_ratio"
        }
    }

    public var epochs: Int
    public var iterations: Int
    public var lastMetrics: MetricsLine?
    public var memorisation: Memorisation

    enum CodingKeys: String, CodingKey {
        case epochs, iterations, lastMetrics = "last_metrics", memorisation
    }

    public init(epochs: Int, iterations: Int, lastMetrics: MetricsLine?, memorisation: Memorisation) {
        self.epochs = epochs
        self.iterations = iterations
        self.lastMetrics = lastMetrics
        self.memorisation = memorisation
    }

    /// Generates `sampleCount` images with `generator` (evaluation mode) and measures them.
    public static func measure(generator: Sequential, configuration: DCGANConfiguration, dataset: String,
                               sampleCount: Int = 256, seed: UInt64) throws -> Memorisation {
        var random = SeededRandom(seed: seed &+ 0x5A)
        let z = Tensor(shape: [sampleCount, configuration.nz, 1, 1], zeros: false)
        for i in 0..<z.count { z[i] = random.nextNormal() }
        generator.isTraining = false
        defer { generator.isTraining = true }
        let samples = generator.forward(z).values
        let dimension = configuration.channels * configuration.imageSize * configuration.imageSize

        let loader = try BatchLoader(directory: dataset, batchSize: 1024, seed: seed, dropLast: false)
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
        let sampleDistances = sampleNearest.map(rms).sorted(), realDistances = realNearest.filter(\.isFinite).map(rms).sorted()
        let sampleMedian = sampleDistances[sampleDistances.count / 2]
        let realMedian = realDistances.isEmpty ? .nan : realDistances[realDistances.count / 2]
        return Memorisation(samples: sampleCount, sampleDistanceMin: sampleDistances[0], sampleDistanceMedian: sampleMedian,
                            sampleDistanceMean: sampleDistances.reduce(0, +) / Float(sampleDistances.count),
                            realDistanceMedian: realMedian, medianRatio: sampleMedian / realMedian)
    }
}
