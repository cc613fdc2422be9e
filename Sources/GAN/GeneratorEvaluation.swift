import Evaluation
import Foundation
import Formats
import Imaging
import NN

/// `darkroom evaluate`'s output: the figures of `Evaluation` plus the run summary's diversity and
/// memorisation checks, with what was measured. JSON keys are a contract.
public struct EvaluationReport: Codable, Sendable {
    public var figures: EvaluationFigures
    public var diversity: Diversity
    public var memorisation: Memorisation
    public var checkpoint: String
    public var ema: Bool
    public var data: String
    public var seed: UInt64

    enum CodingKeys: String, CodingKey { case diversity, memorisation, checkpoint, ema, data, seed }

    public init(figures: EvaluationFigures, diversity: Diversity, memorisation: Memorisation, checkpoint: String, ema: Bool, data: String, seed: UInt64) {
        self.figures = figures
        self.diversity = diversity
        self.memorisation = memorisation
        self.checkpoint = checkpoint
        self.ema = ema
        self.data = data
        self.seed = seed
    }

    /// The figures' keys sit at the top level beside the others.
    public func encode(to encoder: Encoder) throws {
        try figures.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(diversity, forKey: .diversity)
        try container.encode(memorisation, forKey: .memorisation)
        try container.encode(checkpoint, forKey: .checkpoint)
        try container.encode(ema, forKey: .ema)
        try container.encode(data, forKey: .data)
        try container.encode(seed, forKey: .seed)
    }

    public init(from decoder: Decoder) throws {
        figures = try EvaluationFigures(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        diversity = try container.decode(Diversity.self, forKey: .diversity)
        memorisation = try container.decode(Memorisation.self, forKey: .memorisation)
        checkpoint = try container.decode(String.self, forKey: .checkpoint)
        ema = try container.decode(Bool.self, forKey: .ema)
        data = try container.decode(String.self, forKey: .data)
        seed = try container.decode(UInt64.self, forKey: .seed)
    }
}

public enum GeneratorEvaluation {
    /// `count` images [count, C, S, S] from latents seeded as `generate` seeds them (image i of seed s
    /// is the same image here and there).
    public static func samples(_ generator: TrainedGenerator, count: Int, seed: UInt64, batch: Int = 256) -> [Float] {
        var out: [Float] = []
        for start in stride(from: 0, to: count, by: batch) {
            let n = min(batch, count - start)
            let latents = (start..<start + n).flatMap { generator.latent(seed: seed, index: $0) }
            out += generator.images(latents: latents).values
        }
        return out
    }

    /// Everything `darkroom evaluate` prints, for one checkpoint against a dataset's reference.
    public static func evaluate(_ generator: TrainedGenerator, reference: RealReference, seed: UInt64 = 0) throws -> (EvaluationReport, SampleEvaluation, [Float]) {
        let configuration = generator.configuration
        guard configuration.imageSize == reference.imageSize && configuration.channels == reference.channels else {
            throw EvaluationError.mismatch(path: reference.dataset, reason: "\(reference.imageSize) px × \(reference.channels), the model draws \(configuration.imageSize) px × \(configuration.channels)")
        }
        let synthetic = samples(generator, count: reference.count, seed: seed)
        let evaluation = SampleEvaluation.measure(synthetic, against: reference)
        let spread = try SampleSpread.measure(samples: Array(synthetic.prefix(256 * reference.sampleLength)), dataset: reference.dataset, seed: seed)
        let report = EvaluationReport(figures: evaluation.figures, diversity: spread.diversity, memorisation: spread.memorisation,
                                      checkpoint: generator.checkpointPath, ema: generator.usesAverage, data: reference.dataset, seed: seed)
        return (report, evaluation, synthetic)
    }

    /// DIR/evaluation.json, DIR/bins.png (each mode-coverage bin's real centre, in bin order) and
    /// DIR/most-convincing.png / least-convincing.png (the held-out fakes the two-sample classifier
    /// scored most and least real, most extreme first).
    public static func write(_ report: EvaluationReport, evaluation: SampleEvaluation, synthetic: [Float], reference: RealReference,
                             to directory: String, grid: Int = 32) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let size = reference.imageSize, channels = reference.channels, sample = reference.sampleLength
        let centres = Tensor(shape: [reference.bins.count, channels, size, size], values: reference.bins.centres)
        try AtomicFile.write(try PNG.encode(SampleGrid.image(centres, columns: 10)), to: directory + "/bins.png")
        if let twoSample = evaluation.twoSample {
            let ranked = zip(twoSample.syntheticIndices, twoSample.syntheticScores).sorted { $0.1 > $1.1 }.map(\.0)
            for (name, indices) in [("most-convincing.png", ranked.prefix(grid)), ("least-convincing.png", ranked.reversed().prefix(grid))] {
                let values = indices.flatMap { synthetic[$0 * sample..<($0 + 1) * sample] }
                let images = Tensor(shape: [indices.count, channels, size, size], values: values)
                try AtomicFile.write(try PNG.encode(SampleGrid.image(images)), to: "\(directory)/\(name)")
            }
        }
        try AtomicFile.write(Array(try encoder.encode(report)), to: directory + "/evaluation.json")
    }
}
