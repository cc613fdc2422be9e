import Evaluation
import Foundation
import Formats
import Imaging
import NN
import TestSupport
import XCTest
@testable import GAN

/// Scores images by their mean pixel: brighter is "more real".
final class BrightnessScorer: RealismScorer {
    let name = "brightness"
    func scores(_ images: Tensor) -> [Float] {
        let plain = images.plain(), count = plain.shape[0], sample = plain.count / count
        return (0..<count).map { n in (0..<sample).reduce(0) { $0 + plain[n * sample + $1] } / Float(sample) }
    }
}

final class EvaluationInTrainingTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("evaluation") }
    override func tearDown() { directory.remove() }

    func testTrainingLogsFiguresAndKeepsTheBestCheckpoint() throws {
        let data = try writeTinyDataset(directory, count: 100)
        var options = TrainOptions.tiny(data: data, out: directory.file("run").path)
        options.kimg = 0.96
        options.evalEvery = 0.48
        options.evalCount = 100
        let training = try TrainingRun(options: options)
        XCTAssertEqual(training.evaluationIterations, 60)
        _ = try training.train()
        let lines = try String(contentsOfFile: options.out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        let evaluated = lines.filter { $0.fd != nil }
        XCTAssertEqual(evaluated.map(\.iteration), [60, 120])
        XCTAssertTrue(evaluated.allSatisfy { ($0.precision ?? -1) >= 0 && ($0.recall ?? -1) <= 1 && $0.ndb != nil && ($0.evalSeconds ?? -1) >= 0 })
        // best.safetensors holds the iteration with the lowest fd.
        let best = evaluated.min { $0.fd! < $1.fd! }!
        let (_, _, _, metadata) = try Checkpoint.configuration(at: training.bestCheckpoint.path)
        XCTAssertEqual(metadata["iteration"], String(best.iteration))
        // ... and `generate --checkpoint best` draws from it.
        XCTAssertEqual(try TrainedGenerator(run: options.out, checkpoint: "best").checkpointPath, training.bestCheckpoint.path)

        // The same figures again from the checkpoint, by the library `evaluate` uses.
        var evaluation = EvaluationOptions()
        evaluation.count = 100
        evaluation.twoSample = false
        let reference = try RealReference(dataset: data, options: evaluation)
        let generator = try TrainedGenerator(run: options.out, checkpoint: "best")
        let (report, _, synthetic) = try GeneratorEvaluation.evaluate(generator, reference: reference)
        XCTAssertEqual(synthetic.count, 100 * 32 * 32)
        XCTAssertTrue(report.figures.fd.isFinite && report.figures.fd > 0)
        XCTAssertNil(report.figures.twoSampleAccuracy)
    }

    func testTrainingSkipsEvaluationOnDatasetsTooSmallToMeasure() throws {
        let data = try writeTinyDataset(directory, count: 60)
        var options = TrainOptions.tiny(data: data, out: directory.file("run").path)
        options.epochs = 1
        options.batch = 30
        let training = try TrainingRun(options: options)
        XCTAssertNil(training.evaluationIterations)
        _ = try training.train()
        XCTAssertFalse(FileManager.default.fileExists(atPath: training.bestCheckpoint.path))
        // A run without best offers its latest, so pipelines can always ask for best.
        XCTAssertEqual(try TrainedGenerator(run: options.out, checkpoint: "best").checkpointPath, training.latestCheckpoint.path)
    }

    /// The default spacing: a tenth of the run, but no denser than keeps evaluation near 5% of
    /// training time.
    func testDefaultEvaluationSpacingFollowsTheRunAndTheCost() throws {
        let data = try writeTinyDataset(directory, count: 200)
        var options = TrainOptions(data: data, out: directory.file("run").path)
        options.batch = 50
        options.evalCount = 100
        XCTAssertEqual(TrainingRun.defaultEvaluationSpacing(evalCount: 1000), 8, accuracy: 1e-9)
        options.kimg = 100  // a tenth: 10 kimg = 200 iterations; the cost floor is 0.8 kimg
        XCTAssertEqual(try TrainingRun(options: options).evaluationIterations, 200)
        options.kimg = 2  // a tenth is 0.2 kimg, under the floor: every 0.8 kimg = 16 iterations
        XCTAssertEqual(try TrainingRun(options: options).evaluationIterations, 16)
        options.evalEvery = 0.1
        XCTAssertEqual(try TrainingRun(options: options).evaluationIterations, 2)
        options.evalEvery = 0
        XCTAssertNil(try TrainingRun(options: options).evaluationIterations)
    }

    func testReportPutsTheContractKeysAtTheTopLevel() throws {
        let figures = EvaluationFigures(twoSampleAccuracy: 0.75, twoSampleLoss: 0.5, fd: 1.5, precision: 0.6, recall: 0.4, ndb: 3,
                                        ndbBins: [CoverageBin(realShare: 0.5, syntheticShare: 0.7, z: 2.5, significant: true)],
                                        count: 100, featureSpace: FeatureSpace.version)
        let diversity = Diversity(sampleDistanceMedian: 1, realDistanceMedian: 1, samplePixelSpread: 0.5, realPixelSpread: 0.5)
        let memorisation = Memorisation(samples: 1, sampleDistanceMin: 1, sampleDistanceMedian: 1, sampleDistanceMean: 1, realDistanceMedian: 1, medianRatio: 1)
        let report = EvaluationReport(figures: figures, diversity: diversity, memorisation: memorisation, checkpoint: "c", ema: true, data: "d", seed: 3)
        let data = try JSONEncoder().encode(report)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["two_sample_accuracy", "fd", "precision", "recall", "ndb", "ndb_bins", "diversity", "memorisation", "feature_space"] {
            XCTAssertNotNil(object[key], key)
        }
        XCTAssertEqual((object["ndb_bins"] as? [[String: Any]])?.first?["synthetic_share"] as? Double, 0.7)
        let decoded = try JSONDecoder().decode(EvaluationReport.self, from: data)
        XCTAssertEqual(decoded.figures.fd, 1.5)
        XCTAssertEqual(decoded.seed, 3)
    }
}

final class FilterTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var run: String { directory.file("run").path }

    override func setUpWithError() throws {
        directory = try TemporaryDirectory("filter")
        let data = try writeTinyDataset(directory, count: 24)
        _ = try trainTinyRun(directory, data: data)
    }

    override func tearDown() { directory.remove() }

    func testFilterKeepsTheBestScoredCandidatesWithTheirScores() throws {
        let generator = try TrainedGenerator(run: run)
        var options = GenerationOptions(count: 6)
        options.filter = 0.5
        options.seed = 4
        XCTAssertEqual(options.candidates(for: 6), 12)
        let rows = try Generation.write(generator, options: options, to: directory.file("kept").path, scorer: BrightnessScorer())
        XCTAssertEqual(rows.count, 6)
        // The scores of all twelve candidates, computed independently.
        let all = generator.images(latents: (0..<12).flatMap { generator.latent(seed: 4, index: $0) })
        let scores = BrightnessScorer().scores(all)
        let expected = scores.indices.sorted { scores[$0] > scores[$1] }.prefix(6).sorted()
        XCTAssertEqual(rows.map(\.index), expected)
        for row in rows { XCTAssertEqual(row.score!, scores[row.index], accuracy: 1e-5) }
        // Each kept image is its latent's image, and latents.npy holds the kept latents.
        let latents = try Generation.readLatents(directory.file("kept/latents.npy").path, nz: 16)
        XCTAssertEqual(Array(latents[16..<32]), generator.latent(seed: 4, index: rows[1].index))
        let metadata = try String(contentsOfFile: directory.file("kept/metadata.jsonl").path, encoding: .utf8)
        XCTAssertTrue(metadata.contains("\"score\""))
    }

    func testTheDiscriminatorScoresAsTheTrainedOneDoes() throws {
        let scorer = try DiscriminatorScorer(run: run)
        let generator = try TrainedGenerator(run: run)
        let images = generator.images(latents: (0..<4).flatMap { generator.latent(seed: 0, index: $0) })
        let scores = scorer.scores(images)
        XCTAssertEqual(scores.count, 4)
        XCTAssertTrue(scores.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(Set(scores).count, 1)
        // Unfiltered output has no scores.
        let rows = try Generation.write(generator, options: GenerationOptions(count: 2), to: directory.file("plain").path)
        XCTAssertTrue(rows.allSatisfy { $0.score == nil })
    }
}
