import Foundation
import Formats
import GAN
import NN
import TestSupport
import XCTest

/// The failure-mode remedies that are options of the plain step: the two time-scale update rule
/// and the latent prior.
final class StabiliserTests: XCTestCase {
    var directory: TemporaryDirectory!
    override func setUpWithError() throws { directory = try TemporaryDirectory() }
    override func tearDown() { directory = nil }

    private func options(out: String, data: String) -> TrainOptions {
        var options = TrainOptions(data: data, out: out)
        options.epochs = 2
        options.batch = 8
        options.nz = 16
        options.ngf = 8
        options.ndf = 8
        options.logEvery = 1
        return options
    }

    func testSpherePriorPutsEveryLatentAtRadiusRootNz() {
        let sphere = DCGANConfiguration(imageSize: 32, channels: 1, nz: 64, latent: .sphere)
        var random = SeededRandom(seed: 3)
        let z = sphere.latents(count: 50, random: &random)
        for row in 0..<50 {
            let norm = z[row * 64..<(row + 1) * 64].reduce(0) { $0 + $1 * $1 }.squareRoot()
            XCTAssertEqual(norm, 8, accuracy: 1e-4)
        }
        // The same draws as the normal prior, only scaled: directions are unchanged.
        var again = SeededRandom(seed: 3)
        let normal = DCGANConfiguration(imageSize: 32, channels: 1, nz: 64).latents(count: 50, random: &again)
        let ratio = z[0] / normal[0]
        XCTAssertGreaterThan(ratio, 0)
        for i in 0..<64 { XCTAssertEqual(z[i], normal[i] * ratio, accuracy: 1e-5) }
        // The normal prior's norms spread; the sphere's do not.
        let norms = (0..<50).map { row in normal[row * 64..<(row + 1) * 64].reduce(0) { $0 + $1 * $1 }.squareRoot() }
        XCTAssertGreaterThan(norms.max()! - norms.min()!, 1)
    }

    func testCheckpointsFromBeforeThePriorReadAsNormal() throws {
        let old = #"{"image_size":32,"channels":1,"nz":100,"ngf":64,"ndf":64,"dropout":0}"#
        XCTAssertEqual(try JSONDecoder().decode(DCGANConfiguration.self, from: Data(old.utf8)).latent, .normal)
        let oldStep = #"{"loss":"bce","lr":0.0002,"beta1":0.5,"beta2":0.999,"real_label":1,"backend":"fast"}"#
        let step = try JSONDecoder().decode(StepOptions.self, from: Data(oldStep.utf8))
        XCTAssertNil(step.lrD)
        XCTAssertEqual(step.discriminatorLearningRate, 2e-4)
        var twoRates = StepOptions()
        twoRates.lrD = 4e-4
        twoRates.lrG = 1e-4
        XCTAssertEqual(try JSONDecoder().decode(StepOptions.self, from: JSONEncoder().encode(twoRates)), twoRates)
    }

    /// TTUR: each Adam takes its own rate, and one step moves each network by its rate (Adam's
    /// first update is ±lr per weight, whatever the gradient's size).
    func testTwoTimeScalesGiveEachNetworkItsRate() {
        var step = StepOptions(backend: .reference)
        step.lrD = 4e-4
        step.lrG = 1e-4
        let trainer = DCGANTrainer(configuration: DCGANConfiguration(imageSize: 32, channels: 1, nz: 8, ngf: 4, ndf: 4), options: step, seed: 1)
        XCTAssertEqual(trainer.discriminatorOptimizer.learningRate, 4e-4)
        XCTAssertEqual(trainer.generatorOptimizer.learningRate, 1e-4)
        let d0 = trainer.discriminator.parameters[0].value.values, g0 = trainer.generator.parameters[0].value.values
        var random = SeededRandom(seed: 2)
        trainer.step(real: Tensor(shape: [4, 1, 32, 32], values: (0..<4 * 32 * 32).map { _ in random.nextUniform() * 2 - 1 }))
        let dMove = zip(trainer.discriminator.parameters[0].value.values, d0).map { abs($0 - $1) }.max()!
        let gMove = zip(trainer.generator.parameters[0].value.values, g0).map { abs($0 - $1) }.max()!
        XCTAssertEqual(dMove, 4e-4, accuracy: 4e-5)
        XCTAssertEqual(gMove, 1e-4, accuracy: 1e-5)
    }

    /// Both remedies are in the checkpoint's configuration: a resumed run equals an uninterrupted
    /// one, and `generate` draws from the prior the run trained with.
    func testSphereAndTwoRatesResumeExactlyAndGenerateFromTheSphere() throws {
        let data = try writeTinyDataset(directory)
        let straight = directory.file("straight").path, resumed = directory.file("resumed").path
        func configured(_ out: String) -> TrainOptions {
            var options = options(out: out, data: data)
            options.noise = .sphere
            options.step.lrD = 4e-4
            options.step.lrG = 1e-4
            return options
        }
        XCTAssertEqual(try TrainingRun(options: configured(straight)).train(), .finished)
        var steps = 0
        XCTAssertEqual(try TrainingRun(options: configured(resumed)).train(stopRequested: { steps += 1; return steps == 4 }), .stopped)
        var resuming = configured(resumed)
        resuming.resume = true
        XCTAssertEqual(try TrainingRun(options: resuming).train(), .finished)
        func losses(_ run: String) throws -> [[Float]] {
            try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
                let line = try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8))
                return [line.lossD, line.lossG]
            }
        }
        XCTAssertEqual(try losses(resumed), try losses(straight))

        let generator = try TrainedGenerator(run: straight)
        XCTAssertEqual(generator.configuration.latent, .sphere)
        let z = generator.latent(seed: 0, index: 5)
        XCTAssertEqual(z.reduce(0) { $0 + $1 * $1 }.squareRoot(), 4, accuracy: 1e-4)
        let (_, stepOptions, _, _) = try Checkpoint.configuration(at: straight + "/checkpoints/latest.safetensors")
        XCTAssertEqual(stepOptions.discriminatorLearningRate, 4e-4)
        XCTAssertEqual(stepOptions.generatorLearningRate, 1e-4)
    }
}
