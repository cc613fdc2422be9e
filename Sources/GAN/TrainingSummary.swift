import Evaluation
import Foundation
import Formats
import NN

/// RUN/summary.json: how training ended and a memorisation check.
public struct TrainingSummary: Codable, Sendable {
    public typealias Memorisation = Evaluation.Memorisation
    public typealias Diversity = Evaluation.Diversity

    public var epochs: Int
    public var kimg: Double?
    public var iterations: Int
    public var lastMetrics: MetricsLine?
    public var memorisation: Memorisation
    public var diversity: Diversity?

    enum CodingKeys: String, CodingKey {
        case epochs, kimg, iterations, lastMetrics = "last_metrics", memorisation, diversity
    }

    public init(epochs: Int, kimg: Double? = nil, iterations: Int, lastMetrics: MetricsLine?, memorisation: Memorisation, diversity: Diversity? = nil) {
        self.epochs = epochs
        self.kimg = kimg
        self.iterations = iterations
        self.lastMetrics = lastMetrics
        self.memorisation = memorisation
        self.diversity = diversity
    }

    /// Generates `sampleCount` images with `generator` (evaluation mode) and measures them.
    public static func measure(generator: Generator, configuration: DCGANConfiguration, dataset: String,
                               sampleCount: Int = 256, seed: UInt64) throws -> (memorisation: Memorisation, diversity: Diversity) {
        var random = SeededRandom(seed: seed &+ 0x5A)
        let latents = configuration.latents(count: sampleCount, random: &random)
        generator.isTraining = false
        defer { generator.isTraining = true }
        return try SampleSpread.measure(samples: generator.forward(latents: latents).values, dataset: dataset, seed: seed)
    }
}
