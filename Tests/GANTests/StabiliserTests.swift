import Foundation
import Formats
@testable import GAN
import NN
import TestSupport
import XCTest

/// The failure-mode remedies that are options of the plain step: the two time-scale update rule,
/// the latent prior, more D steps per G step and instance noise.
final class StabiliserTests: XCTestCase {
    var directory: TemporaryDirectory!
    override func setUpWithError() throws { directory = try TemporaryDirectory() }
    override func tearDown() { directory = nil }

    private func straightAndResumed(_ configure: (inout TrainOptions) -> Void) throws -> (straight: String, resumed: String) {
        try TinyRuns.straightAndResumed(in: directory, configure)
    }

    private func loggedFigures(_ run: String) throws -> [[Float]] { try TinyRuns.loggedFigures(run) }

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
        let (straight, resumed) = try straightAndResumed {
            $0.noise = .sphere
            $0.step.lrD = 4e-4
            $0.step.lrG = 1e-4
        }
        XCTAssertEqual(try loggedFigures(resumed), try loggedFigures(straight))

        let generator = try TrainedGenerator(run: straight)
        XCTAssertEqual(generator.configuration.latent, .sphere)
        let z = generator.latent(seed: 0, index: 5)
        XCTAssertEqual(z.reduce(0) { $0 + $1 * $1 }.squareRoot(), 4, accuracy: 1e-4)
        let (_, stepOptions, _, _) = try Checkpoint.configuration(at: straight + "/checkpoints/latest.safetensors")
        XCTAssertEqual(stepOptions.discriminatorLearningRate, 4e-4)
        XCTAssertEqual(stepOptions.generatorLearningRate, 1e-4)
    }

    func testMoreDiscriminatorStepsUpdateTheGeneratorEveryNth() throws {
        var step = StepOptions(backend: .reference)
        step.discriminatorSteps = 3
        let trainer = DCGANTrainer(configuration: DCGANConfiguration(imageSize: 32, channels: 1, nz: 8, ngf: 4, ndf: 4), options: step, seed: 1)
        var random = SeededRandom(seed: 2)
        let real = Tensor(shape: [4, 1, 32, 32], values: (0..<4 * 32 * 32).map { _ in random.nextUniform() * 2 - 1 })
        var g = trainer.generator.parameters[0].value.values, d = trainer.discriminator.parameters[0].value.values
        var lossG: Float = 0
        for iteration in 0..<6 {
            let updates = (iteration + 1) % 3 == 0
            let metrics = trainer.step(real: real, updateGenerator: updates)
            let g1 = trainer.generator.parameters[0].value.values, d1 = trainer.discriminator.parameters[0].value.values
            XCTAssertNotEqual(d1, d, "D steps every iteration")
            XCTAssertEqual(g1 != g, updates, "G steps on iteration \(iteration + 1) of every 3: \(updates)")
            if updates { lossG = metrics.lossG } else if iteration > 2 { XCTAssertEqual(metrics.lossG, lossG, "a D-only step reports the last G loss") }
            g = g1
            d = d1
        }
        XCTAssertEqual(trainer.generatorOptimizer.stepCount, 2)
        XCTAssertEqual(trainer.discriminatorOptimizer.stepCount, 6)
    }

    func testInstanceNoiseIsAddedToACopyAndAnnealsToZero() throws {
        let trainer = DCGANTrainer(configuration: DCGANConfiguration(imageSize: 32, channels: 1, nz: 8, ngf: 4, ndf: 4),
                                   options: StepOptions(backend: .reference), seed: 1)
        let images = Tensor(shape: [8, 1, 32, 32], values: (0..<8 * 32 * 32).map { Float($0 % 7) / 7 - 0.5 })
        var scratch: Tensor?
        XCTAssertTrue(trainer.discriminatorInput(images, augment: DiffAugment(policy: DiffAugmentPolicy()), augments: false, probability: 0,
                                                 noisy: &scratch) === images, "no noise: D sees the images themselves")
        trainer.instanceNoiseLevel = 0.3
        let seen = trainer.discriminatorInput(images, augment: DiffAugment(policy: DiffAugmentPolicy()), augments: false, probability: 0, noisy: &scratch)
        XCTAssertFalse(seen === images)
        XCTAssertEqual(images.values, (0..<8 * 32 * 32).map { Float($0 % 7) / 7 - 0.5 }, "the batch itself is untouched")
        let noise = zip(seen.values, images.values).map { Double($0 - $1) }
        let mean = noise.reduce(0, +) / Double(noise.count)
        let std = (noise.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(noise.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.02)
        XCTAssertEqual(std, 0.3, accuracy: 0.01)

        let data = try writeTinyDataset(directory)
        var options = TrainOptions.tiny(data: data, out: directory.file("run").path)
        options.step.instanceNoise = 0.4
        let run = try TrainingRun(options: options)
        XCTAssertEqual(run.plannedIterations, 12)
        XCTAssertEqual(run.instanceNoiseLevel(TrainingProgress(epoch: 0, batchInEpoch: 0, iteration: 0)), 0.4)
        XCTAssertEqual(run.instanceNoiseLevel(TrainingProgress(epoch: 1, batchInEpoch: 0, iteration: 6)), 0.2, accuracy: 1e-6)
        XCTAssertEqual(run.instanceNoiseLevel(TrainingProgress(epoch: 2, batchInEpoch: 0, iteration: 12)), 0)
    }

    /// Stopped on an iteration where only D steps, with instance noise on: the resumed run equals
    /// an uninterrupted one (the noise generator and the last G figures are in the checkpoint).
    func testDStepsAndInstanceNoiseResumeExactly() throws {
        let (straight, resumed) = try straightAndResumed {
            $0.step.discriminatorSteps = 3
            $0.step.instanceNoise = 0.2
        }
        XCTAssertEqual(try loggedFigures(resumed), try loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(a["main.0.weight"], b["main.0.weight"])
        XCTAssertEqual(a["discriminator.main.0.weight"], b["discriminator.main.0.weight"])
    }
}
