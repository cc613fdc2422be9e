import Foundation
import Formats
@testable import GAN
@testable import NN
import TestSupport
import XCTest

/// The remedies that change the networks or the step's phases: gradient penalties (WGAN-GP, R1,
/// DRAGAN), feature matching, historical replay, the unrolled look-ahead, minibatch standard
/// deviation and the upsampling generator.
final class RemedyTests: XCTestCase {
    var directory: TemporaryDirectory!
    override func setUpWithError() throws { directory = try TemporaryDirectory() }
    override func tearDown() { directory = nil }

    private let small = DCGANConfiguration(imageSize: 32, channels: 1, nz: 8, ngf: 4, ndf: 4)

    private func images(_ count: Int, seed: UInt64) -> Tensor {
        var random = SeededRandom(seed: seed)
        return Tensor(shape: [count, 1, 32, 32], values: (0..<count * 32 * 32).map { _ in random.nextUniform() * 2 - 1 })
    }

    /// A discriminator with weights large enough (σ 0.15) that its input gradient is far from zero.
    private func discriminator(_ configuration: DCGANConfiguration, backend: Backend = .fast) -> Discriminator {
        let d = Discriminator(configuration, backend: backend)
        var random = SeededRandom(seed: 7)
        for parameter in d.parameters where parameter.value.shape.count == 4 {
            Initialization.normal(parameter.value, mean: 0, standardDeviation: 0.15, random: &random)
        }
        return d
    }

    /// P(θ) = penalty(∇ₓ ΣD(x)), by one backward pass to the images (with D's activation pattern
    /// frozen when the caller froze it).
    private func penaltyValue(_ d: Discriminator, _ x: Tensor, _ penalty: GradientPenalty) -> Double {
        d.computesParameterGradients = false
        d.needsInputGradient = true
        d.freezesRunningStatistics = true
        defer { d.freezesRunningStatistics = false }
        let logits = d.forward(x)
        let ones = Tensor(shape: logits.shape)
        ones.fill(1)
        let g = d.backward(ones)!.plain().clone()
        return Double(penalty.evaluate(g, direction: Tensor(shape: [1])))
    }

    /// The penalty's weight gradient (three passes, a finite-difference Hessian-vector product)
    /// against central differences of the penalty itself, weight by weight, for the critic without
    /// BatchNorm and for D with it, for both penalty forms. P jumps where a LeakyReLU input crosses
    /// 0, so its derivative is the one with the activation pattern fixed (what double
    /// back-propagation gives): the differences of P are taken with the pattern of θ frozen.
    func testPenaltyWeightGradientsMatchFiniteDifferencesOfThePenalty() {
        let x = images(4, seed: 3)
        for norm in DiscriminatorNorm.allCases {
            var configuration = small
            configuration.discriminatorNorm = norm
            for penalty in [GradientPenalty.squaredNorm(weight: 10), .unitNorm(weight: 10)] {
                let d = discriminator(configuration)
                d.zeroGradients()
                let value = d.accumulatePenaltyGradient(at: x, penalty: penalty, scratch: PenaltyScratch())
                XCTAssertEqual(Double(value), penaltyValue(d, x, penalty), accuracy: 1e-5 * max(1, Double(value)))
                var random = SeededRandom(seed: 11)
                let scale = d.parameters.flatMap { $0.gradient.values }.map(abs).max()!
                _ = penaltyValue(d, x, penalty)
                d.freezesActivationPattern = true
                defer { d.freezesActivationPattern = false }
                for parameter in d.parameters where parameter.value.shape.count == 4 {
                    let analytic = parameter.gradient.values
                    for _ in 0..<8 {
                        let index = Int(random.next() % UInt64(parameter.value.count))
                        let saved = parameter.value[index], h: Float = 1e-2
                        parameter.value[index] = saved + h
                        let plus = penaltyValue(d, x, penalty)
                        parameter.value[index] = saved - h
                        let minus = penaltyValue(d, x, penalty)
                        parameter.value[index] = saved
                        let numeric = (plus - minus) / Double(2 * h)
                        XCTAssertEqual(Double(analytic[index]), numeric, accuracy: 1e-2 * abs(numeric) + 2e-3 * Double(scale),
                                       "\(norm) \(penalty) \(parameter.name)[\(index)]")
                    }
                }
            }
        }
    }

    func testPenaltyFormsAndTheirDirections() {
        let g = Tensor(shape: [2, 1, 1, 2], values: [3, 4, 0, 0.5])
        let direction = Tensor(shape: [1])
        // R1: (γ/2)·mean ‖g‖² = (10/2)·(25 + 0.25)/2; ∂P/∂g = γ·g/N.
        XCTAssertEqual(GradientPenalty.squaredNorm(weight: 10).evaluate(g, direction: direction), 63.125, accuracy: 1e-4)
        XCTAssertEqual(direction.values, [15, 20, 0, 2.5])
        // Unit norm: λ·mean (‖g‖ − 1)² = 10·(16 + 0.25)/2; ∂P/∂g = 2λ(‖g‖ − 1)·g/(‖g‖·N).
        XCTAssertEqual(GradientPenalty.unitNorm(weight: 10).evaluate(g, direction: direction), 81.25, accuracy: 1e-4)
        XCTAssertEqual(direction.values[0], 2 * 10 * 4 * 3 / 5 / 2, accuracy: 1e-5)
        XCTAssertEqual(direction.values[3], 2 * 10 * -0.5 * 1 / 2, accuracy: 1e-5)
    }

    /// The fast and the reference backends give the same penalty gradient.
    func testPenaltyGradientFastAndReferenceAgree() {
        let x = images(4, seed: 5)
        var gradients: [[Float]] = []
        for backend in [Backend.fast, .reference] {
            let d = discriminator(small, backend: backend)
            d.zeroGradients()
            d.accumulatePenaltyGradient(at: x, penalty: .unitNorm(weight: 10), scratch: PenaltyScratch())
            gradients.append(d.parameters.flatMap { $0.gradient.values })
        }
        let scale = gradients[1].map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        for (a, b) in zip(gradients[0], gradients[1]) { XCTAssertEqual(a, b, accuracy: 2e-3 * scale) }
    }

    /// D's named outputs: the features' gradient added at the trunk's end back-propagates like the
    /// finite differences of Σ r·logits + Σ q·features say.
    func testDiscriminatorBackwardFromLogitsAndFeatures() {
        var configuration = small
        configuration.minibatchStd = true
        let d = discriminator(configuration)
        let x = images(4, seed: 9)
        func objective() -> Double {
            let logits = d.forward(x).plain().values
            let features = d.features!.plain().values
            return logits.enumerated().reduce(0) { $0 + Double($1.element) * Double($1.offset + 1) }
                + features.enumerated().reduce(0) { $0 + Double($1.element) * (Double($1.offset % 5) - 2) / 5 }
        }
        d.needsInputGradient = true
        d.computesParameterGradients = false
        let logits = d.forward(x)
        XCTAssertEqual(logits.shape, [4, 1, 1, 1])
        XCTAssertEqual(d.features!.shape, [4, 16, 4, 4])
        let logitGradient = Tensor(shape: [4, 1, 1, 1], values: [1, 2, 3, 4])
        let featureGradient = Tensor(shape: [4, 16, 4, 4], values: (0..<4 * 256).map { (Float($0 % 5) - 2) / 5 })
        let analytic = d.backward(logitGradient, featureGradient: featureGradient)!.plain().values
        _ = d.forward(x)
        let logitsOnly = d.backward(logitGradient)!.plain().values
        // Differences with the slopes of x: a LeakyReLU input crossing 0 would make them jump.
        d.freezesActivationPattern = true
        d.freezesRunningStatistics = true
        for index in [5, 300, 1500, 4000] {
            let saved = x[index]
            x[index] = saved + 1e-2
            let plus = objective()
            x[index] = saved - 1e-2
            let minus = objective()
            x[index] = saved
            let tolerance = 3e-2 * max(abs(Double(analytic[index])), 1e-2)
            XCTAssertEqual(Double(analytic[index]), (plus - minus) / 2e-2, accuracy: tolerance)
            XCTAssertGreaterThan(abs(Double(logitsOnly[index] - analytic[index])), 3 * tolerance, "the features' gradient counts")
        }
    }

    func testNetworkVariantsHaveTheirLayersAndShapes() {
        var configuration = small
        configuration.generatorKind = .upsample
        configuration.discriminatorNorm = .none
        configuration.minibatchStd = true
        let trainer = DCGANTrainer(configuration: configuration, options: StepOptions(backend: .fast), seed: 1)
        XCTAssertEqual(trainer.generator.layers.filter { $0 is Upsample2x }.count, 3)
        XCTAssertFalse(trainer.generator.layers.contains { $0 is ConvTranspose2d && ($0 as! ConvTranspose2d).stride == 2 })
        XCTAssertFalse(trainer.discriminator.layers.contains { $0 is BatchNorm2d })
        XCTAssertTrue(trainer.discriminator.layers[trainer.discriminator.head.lowerBound] is MinibatchStd)
        let z = trainer.sampleNoise(batch: 4, random: &trainer.noise)
        XCTAssertEqual(trainer.generator.forward(z).shape, [4, 1, 32, 32])
        let metrics = trainer.step(real: images(4, seed: 1))
        XCTAssertTrue(metrics.lossD.isFinite && metrics.lossG.isFinite)
    }

    /// WGAN-GP: the critic's loss includes the penalty; R1 runs on every 16th D step only.
    func testWassersteinCriticAndLazyR1() {
        var options = StepOptions(loss: .wganGP, backend: .fast)
        options.gp = 10
        var configuration = small
        configuration.discriminatorNorm = .none
        let critic = DCGANTrainer(configuration: configuration, options: options, seed: 1)
        let real = images(8, seed: 2)
        let first = critic.step(real: real)
        XCTAssertNotNil(first.penalty)
        XCTAssertEqual(first.penalty!, 10, accuracy: 1, "at initialisation ‖∇D‖ ≈ 0, so the penalty is ≈ λ")

        var r1 = StepOptions(backend: .fast)
        r1.r1 = 1
        let trainer = DCGANTrainer(configuration: small, options: r1, seed: 1)
        let penalised = (0..<18).map { _ in trainer.step(real: real).penalty != nil }
        XCTAssertEqual(penalised.indices.filter { penalised[$0] }, [0, 16])
    }

    func testReplayBufferMixesStoredImagesAndKeepsNewOnes() {
        var buffer = ReplayBuffer(capacity: 6, imageSize: 2, seed: 1)
        let mixed = Tensor(shape: [1])
        let first = Tensor(shape: [4, 2], values: [1, 1, 2, 2, 3, 3, 4, 4])
        XCTAssertEqual(buffer.mix(first, fraction: 0.5, into: mixed), 0, "nothing stored yet")
        XCTAssertEqual(mixed.values, first.values)
        buffer.store(first)
        XCTAssertEqual(buffer.count, 4)
        let second = Tensor(shape: [4, 2], values: [5, 5, 6, 6, 7, 7, 8, 8])
        XCTAssertEqual(buffer.mix(second, fraction: 0.5, into: mixed), 2)
        let rows = stride(from: 0, to: 8, by: 2).map { mixed.values[$0] }
        XCTAssertTrue([1, 2, 3, 4].contains(rows[0]) && [1, 2, 3, 4].contains(rows[1]), "the first half replayed: \(rows)")
        XCTAssertEqual(Array(rows[2...]), [7, 8], "the rest fresh")
        buffer.store(second)
        XCTAssertEqual(buffer.count, 6, "full at capacity")
        XCTAssertEqual(buffer.images[8..<10], [5, 5], "appended while there was room")
        XCTAssertTrue(buffer.images.contains(7) || buffer.images.contains(8), "then over random slots")
        XCTAssertEqual(Set(buffer.images).subtracting(Set((1...8).map(Float.init))), [])
    }

    /// The look-ahead changes G's update only: D after the step is exactly D after a plain step.
    func testUnrolledLookAheadRestoresTheDiscriminator() {
        var unrolled = StepOptions(backend: .reference)
        unrolled.unroll = 3
        let plain = DCGANTrainer(configuration: small, options: StepOptions(backend: .reference), seed: 1)
        let ahead = DCGANTrainer(configuration: small, options: unrolled, seed: 1)
        let real = images(4, seed: 3)
        plain.step(real: real)
        ahead.step(real: real)
        XCTAssertTrue(ahead.discriminator.parameters.map(\.value.values) == plain.discriminator.parameters.map(\.value.values))
        XCTAssertEqual(ahead.discriminatorOptimizer.stepCount, 1)
        XCTAssertTrue(ahead.discriminatorOptimizer.secondMoments.map(\.values) == plain.discriminatorOptimizer.secondMoments.map(\.values))
        XCTAssertNotEqual(ahead.generator.parameters[0].value.values, plain.generator.parameters[0].value.values)
    }

    /// Every new state in one run, stopped and resumed: penalty draws (WGAN-GP and DRAGAN), R1's
    /// schedule, the replay buffer, the look-ahead, feature matching, minibatch std, the upsampling
    /// generator. The resumed run equals the straight one.
    func testEveryRemedyResumesExactly() throws {
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5) { options in
            options.minibatchStd = true
            options.generator = .upsample
            options.step.loss = .wganGP
            options.step.dragan = 5
            options.step.r1 = 1
            options.step.r1Interval = 3
            options.step.replay = 0.5
            options.step.unroll = 2
            options.step.featureMatching = true
        }
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        XCTAssertNotNil(a["main.4.weight"], "the first upsampling block's conv")
        XCTAssertEqual(a["main.4.weight"], b["main.4.weight"])
        XCTAssertEqual(a["discriminator.main.0.weight"], b["discriminator.main.0.weight"])
        XCTAssertEqual(a["replay.images"]?.shape, [96, 1, 32, 32], "two epochs of 6 batches of 8 in the buffer")
        XCTAssertEqual(a["replay.images"], b["replay.images"])
        let (configuration, _, _, _) = try Checkpoint.configuration(at: straight + "/checkpoints/latest.safetensors")
        XCTAssertEqual(configuration.discriminatorNorm, .none, "the WGAN-GP critic has no BatchNorm by default")
        XCTAssertTrue(configuration.minibatchStd)
        XCTAssertEqual(configuration.generatorKind, .upsample)
    }

    func testQualityPresetSetsItsBundleAndKeepsARunsOwnAverage() {
        var options = TrainOptions.tiny(data: "d", out: "o")
        TrainPreset.quality.apply(to: &options)
        XCTAssertEqual(options.step.r1, 0.01)
        XCTAssertEqual(options.emaKimg, 10)
        XCTAssertEqual(options.step.fakeClassWeight, 0, "with labels, D's classifier learns from real labels only")
        XCTAssertEqual(options.preset, .quality)
        var own = TrainOptions.tiny(data: "d", out: "o")
        own.ema = 0.99
        own.step.fakeClassWeight = 1
        TrainPreset.quality.apply(to: &own)
        XCTAssertNil(own.emaKimg)
        XCTAssertEqual(own.ema, 0.99)
        XCTAssertEqual(own.step.fakeClassWeight, 1, "a run's own fake class weight stays")
    }

    /// Feature matching trains G on D's features: its loss is the matching distance, not an adversarial one.
    func testFeatureMatchingReportsTheMatchingDistance() {
        var options = StepOptions(backend: .fast)
        options.featureMatching = true
        let trainer = DCGANTrainer(configuration: small, options: options, seed: 1)
        let metrics = trainer.step(real: images(8, seed: 4))
        XCTAssertGreaterThan(metrics.lossG, 0)
        XCTAssertLessThan(metrics.lossG, 1, "a squared distance of mean features, not a BCE near ln 2")
    }
}

final class PrecisionRunTests: XCTestCase {
    private var directory: TemporaryDirectory!
    override func setUpWithError() throws { directory = try TemporaryDirectory("precision") }
    override func tearDown() { directory.remove() }

    /// A bf16 run stopped and resumed equals itself run straight; its checkpoint is fp32 in the
    /// usual format, config.json records the precision, and its losses are not the fp32 run's.
    func testBF16RunResumesExactlyWithFP32Checkpoints() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5) { options in
            options.ngf = 16
            options.ndf = 16
            options.step.precision = .bf16
        }
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(a["main.3.weight"], b["main.3.weight"])
        XCTAssertEqual(a["discriminator.main.2.weight"], b["discriminator.main.2.weight"])
        let header = try String(decoding: Data(contentsOf: URL(fileURLWithPath: straight + "/checkpoints/latest.safetensors")).prefix(4096), as: UTF8.self)
        XCTAssertFalse(header.contains("BF16"), "checkpoints stay fp32")
        let config = try String(contentsOfFile: straight + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"precision\" : \"bf16\"") || config.contains("\"precision\":\"bf16\""), config)

        var fp32 = TrainOptions.tiny(data: directory.file("dataset").path, out: directory.file("fp32").path)
        fp32.ngf = 16
        fp32.ndf = 16
        XCTAssertEqual(try TrainingRun(options: fp32).train(), .finished)
        let bf16Losses = try TinyRuns.loggedFigures(straight), fp32Losses = try TinyRuns.loggedFigures(fp32.out)
        XCTAssertNotEqual(bf16Losses[0], fp32Losses[0], "the first step already rounds to bf16")
        XCTAssertEqual(bf16Losses[0][0], fp32Losses[0][0], accuracy: 0.05 * abs(fp32Losses[0][0]), "but stays close to fp32")
    }
}

extension PrecisionRunTests {
    /// Reusing an operand's bf16 copy within a layer's forward/backward cycle changes no bit of a
    /// run that exercises every pass (penalties, look-ahead, feature matching, the generator's
    /// upsampling convolutions): the same run with every operand converted afresh gives the same
    /// losses and weights.
    func testReusedBF16OperandsChangeNothing() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let data = try writeTinyDataset(directory, count: 24)
        func train(_ out: String) throws -> [String: Safetensors.Entry] {
            var options = TrainOptions.tiny(data: data, out: directory.file(out).path)
            options.epochs = 1
            options.ngf = 16
            options.ndf = 16
            options.step.precision = .bf16
            options.step.r1 = 1
            options.step.r1Interval = 2
            options.step.dragan = 5
            options.step.unroll = 1
            options.step.featureMatching = true
            options.generator = .upsample
            XCTAssertEqual(try TrainingRun(options: options).train(), .finished)
            return try Safetensors.read(path: options.out + "/checkpoints/latest.safetensors").tensors
        }
        let reused = try train("reused")
        DNNLConvolutionKernels.reusesOperands = false
        defer { DNNLConvolutionKernels.reusesOperands = true }
        let fresh = try train("fresh")
        XCTAssertEqual(try TinyRuns.loggedFigures(directory.file("reused").path), try TinyRuns.loggedFigures(directory.file("fresh").path))
        for name in ["main.0.weight", "main.4.weight", "discriminator.main.0.weight", "discriminator.main.2.weight"] {
            XCTAssertNotNil(reused[name], name)
            XCTAssertEqual(reused[name], fresh[name], name)
        }
    }
}
