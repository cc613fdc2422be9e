import Foundation
import Formats
import NN

/// Training options that change the step (the rest lives in the CLI's `train`).
public struct StepOptions: Codable, Equatable, Sendable {
    public var loss: GANLoss = .bce
    public var learningRate: Float = 2e-4
    /// The two time-scale update rule (Heusel et al. 2017): each network's own rate; nil is
    /// `learningRate`.
    public var lrD: Float?
    public var lrG: Float?
    public var discriminatorLearningRate: Float { lrD ?? learningRate }
    public var generatorLearningRate: Float { lrG ?? learningRate }
    public var beta1: Float = 0.5
    public var beta2: Float = 0.999
    /// One-sided label smoothing: the real target for D (1 = none; 0.9 is the usual choice).
    public var realLabel: Float = 1
    public var backend: Backend = .fast
    /// Differentiable augmentation of every image D sees (empty: none).
    public var diffAugment = DiffAugmentPolicy()
    /// Adaptive augmentation (StyleGAN2-ADA): the probability of each augmentation starts at 0 and
    /// moves so that E[sign(D(real))] stays near this target. nil: the policy is always applied.
    public var adaTarget: Float?
    /// Discriminator updates per generator update (WGAN's n_critic).
    public var discriminatorSteps = 1
    /// Instance noise (Sønderby et al. 2017, Arjovsky & Bottou 2017): the standard deviation of
    /// Gaussian noise added to every image D sees at the start of the run; the training run
    /// anneals it linearly to 0 through `DCGANTrainer.instanceNoiseLevel`.
    public var instanceNoise: Float = 0

    public init(loss: GANLoss = .bce, learningRate: Float = 2e-4, beta1: Float = 0.5, beta2: Float = 0.999, realLabel: Float = 1,
                backend: Backend = .fast, diffAugment: DiffAugmentPolicy = DiffAugmentPolicy(), adaTarget: Float? = nil) {
        self.loss = loss
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.realLabel = realLabel
        self.backend = backend
        self.diffAugment = diffAugment
        self.adaTarget = adaTarget
    }

    enum CodingKeys: String, CodingKey {
        case loss, learningRate = "lr", lrD = "lr_d", lrG = "lr_g", beta1, beta2, realLabel = "real_label", backend, diffAugment = "diffaugment", adaTarget = "ada_target"
        case discriminatorSteps = "d_steps", instanceNoise = "instance_noise"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        loss = try container.decode(GANLoss.self, forKey: .loss)
        learningRate = try container.decode(Float.self, forKey: .learningRate)
        lrD = try container.decodeIfPresent(Float.self, forKey: .lrD)
        lrG = try container.decodeIfPresent(Float.self, forKey: .lrG)
        beta1 = try container.decode(Float.self, forKey: .beta1)
        beta2 = try container.decode(Float.self, forKey: .beta2)
        realLabel = try container.decode(Float.self, forKey: .realLabel)
        backend = try container.decode(Backend.self, forKey: .backend)
        diffAugment = try container.decodeIfPresent(DiffAugmentPolicy.self, forKey: .diffAugment) ?? DiffAugmentPolicy()
        adaTarget = try container.decodeIfPresent(Float.self, forKey: .adaTarget)
        discriminatorSteps = try container.decodeIfPresent(Int.self, forKey: .discriminatorSteps) ?? 1
        instanceNoise = try container.decodeIfPresent(Float.self, forKey: .instanceNoise) ?? 0
    }
}

/// StyleGAN2-ADA's controller of the augmentation probability p. Every `interval` steps the
/// overfitting heuristic r = E[sign(D(x_real))] over those steps is compared with the target, and
/// p moves by ±(batch · interval) / (speedKimg · 1000): fast enough to go from 0 to 1 in 500k images.
public struct AdaptiveAugmentation: Codable, Equatable, Sendable {
    public var target: Float
    public var probability: Float = 0
    /// Sum of sign(D(real)) and the number of logits since the last adjustment.
    public var signSum: Double = 0
    public var signCount = 0
    public var steps = 0
    /// The last interval's r_t (nil before the first adjustment).
    public var lastOverfitting: Float?
    public static let interval = 4
    public static let speedKimg = 500.0

    public init(target: Float) { self.target = target }

    enum CodingKeys: String, CodingKey {
        case target, probability = "p", signSum = "sign_sum", signCount = "sign_count", steps, lastOverfitting = "r_t"
    }

    /// After a step: D's logits on the (augmented) real batch.
    public mutating func observe(realLogits: Tensor, batch: Int) {
        for i in 0..<realLogits.count { signSum += realLogits[i] > 0 ? 1 : (realLogits[i] < 0 ? -1 : 0) }
        signCount += realLogits.count
        steps += 1
        guard steps % AdaptiveAugmentation.interval == 0, signCount > 0 else { return }
        let overfitting = Float(signSum / Double(signCount))
        let adjust = Float(Double(batch * AdaptiveAugmentation.interval) / (AdaptiveAugmentation.speedKimg * 1000))
        probability = min(max(probability + (overfitting > target ? adjust : overfitting < target ? -adjust : 0), 0), 1)
        lastOverfitting = overfitting
        signSum = 0
        signCount = 0
    }
}

/// What one step reports (the DCGAN example's log line).
public struct StepMetrics: Codable, Equatable, Sendable {
    public var lossD: Float
    public var lossG: Float
    /// Mean D output probability on real images, and on fakes (before and after D's update).
    public var dReal: Float
    public var dFake: Float
    public var dFakeAfter: Float

    enum CodingKeys: String, CodingKey {
        case lossD = "loss_d", lossG = "loss_g", dReal = "d_real", dFake = "d_fake", dFakeAfter = "d_fake_after"
    }
}

/// A generator, a discriminator, their Adam optimisers and the noise generator: everything a
/// training step touches, and so everything a checkpoint holds.
public final class DCGANTrainer {
    public let configuration: DCGANConfiguration
    public let options: StepOptions
    public let generator: Sequential
    public let discriminator: Sequential
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam
    /// Draws the noise z; its state is checkpointed so a resumed run draws the same noise.
    public var noise: SeededRandom

    /// Draws DiffAugment's random parameters (checkpointed with the noise generator).
    public var augmentationRandom: SeededRandom
    /// The adaptive augmentation's state (checkpointed), when `options.adaTarget` is set.
    public var adaptive: AdaptiveAugmentation?
    /// The probability each augmentation is applied with: adaptive, or 1 for a fixed policy.
    public var augmentProbability: Float { adaptive?.probability ?? 1 }
    /// This step's instance-noise standard deviation (set by the run from its schedule).
    public var instanceNoiseLevel: Float = 0
    /// Draws the instance noise (checkpointed).
    public var instanceNoiseRandom: SeededRandom
    /// The last generator update's loss and mean D(G(z)): what a step that only updates D reports.
    public var lastGeneratorStep: (loss: Float, dFake: Float) = (0, 0.5)
    private let realAugment: DiffAugment
    private let fakeAugment: DiffAugment
    private var z: Tensor?
    private var fakeImages: Tensor?
    private var lossGradient: Tensor?
    private var noisyReal: Tensor?
    private var noisyFake: Tensor?

    /// Weights N(0, 0.02), BatchNorm scale N(1, 0.02), from `seed`.
    public init(configuration: DCGANConfiguration, options: StepOptions, seed: UInt64) {
        self.configuration = configuration
        self.options = options
        generator = DCGAN.generator(configuration, backend: options.backend)
        discriminator = DCGAN.discriminator(configuration, backend: options.backend, seed: seed &+ 17)
        var random = SeededRandom(seed: seed)
        Initialization.dcgan(generator.layers, random: &random)
        Initialization.dcgan(discriminator.layers, random: &random)
        generatorOptimizer = Adam(parameters: generator.parameters, learningRate: options.generatorLearningRate, beta1: options.beta1, beta2: options.beta2)
        discriminatorOptimizer = Adam(parameters: discriminator.parameters, learningRate: options.discriminatorLearningRate, beta1: options.beta1, beta2: options.beta2)
        noise = SeededRandom(seed: seed &+ 1)
        augmentationRandom = SeededRandom(seed: seed &+ 2)
        instanceNoiseRandom = SeededRandom(seed: seed &+ 3)
        realAugment = DiffAugment(policy: options.diffAugment)
        fakeAugment = DiffAugment(policy: options.diffAugment)
        adaptive = options.adaTarget.map(AdaptiveAugmentation.init(target:))
    }

    /// Whether D sees augmented images this step (an adaptive p of 0 is no augmentation at all).
    private var augments: Bool { !options.diffAugment.isEmpty && augmentProbability > 0 }

    /// z from the configuration's prior, [batch, nz, 1, 1].
    public func sampleNoise(batch: Int, random: inout SeededRandom) -> Tensor {
        Tensor(shape: [batch, configuration.nz, 1, 1], values: configuration.latents(count: batch, random: &random))
    }

    /// Each loss's gradient is consumed by the backward pass before the next loss is computed, so
    /// one buffer serves them all.
    /// `plain`: D's logits in plain layout.
    private func discriminatorLoss(_ plain: Tensor, real: Bool) -> LossResult {
        let result: LossResult
        switch options.loss {
        case .bce: result = Loss.binaryCrossEntropyWithLogits(plain, target: real ? options.realLabel : 0, into: lossGradient)
        case .hinge: result = Loss.hinge(plain, sign: real ? 1 : -1, into: lossGradient)
        }
        lossGradient = result.gradient
        return result
    }

    /// What D sees of `images`: augmented when augmentation is on, then with instance noise when
    /// its level is above 0. The noise is additive, so the gradient passes through it unchanged.
    func discriminatorInput(_ images: Tensor, augment: DiffAugment, augments: Bool, probability: Float,
                                    noisy: inout Tensor?) -> Tensor {
        let seen = augments ? augment.forward(images, probability: probability, random: &augmentationRandom) : images
        guard instanceNoiseLevel > 0 else { return seen }
        let out = noisy ?? Tensor(shape: [1], zeros: false)
        out.copy(from: seen.plain())
        let values = out.buffer
        for i in 0..<values.count { values[i] += instanceNoiseLevel * instanceNoiseRandom.nextNormal() }
        out.markModified()
        noisy = out
        return out
    }

    /// One iteration, as PyTorch's DCGAN example: D on the real batch, D on G(z) (BatchNorm sees
    /// each batch separately), D steps; then D on the same fakes again and G steps. In the G step D
    /// computes no weight gradients, since nothing would use them. With `updateGenerator` false
    /// only D steps (`discriminatorSteps` > 1), and the last G step's figures are reported.
    /// `real`: [batch, C, S, S] in [-1, 1].
    @discardableResult
    public func step(real: Tensor, updateGenerator: Bool = true) -> StepMetrics {
        let batch = real.shape[0]
        // Fixed for the whole step: p moves only after it.
        let augments = self.augments, probability = augmentProbability

        // (1) Update D: maximise log D(x) + log(1 − D(G(z))).
        discriminator.zeroGradients()
        discriminator.computesParameterGradients = true
        discriminator.needsInputGradient = false
        let realLogits = discriminator.forward(discriminatorInput(real, augment: realAugment, augments: augments, probability: probability,
                                                                  noisy: &noisyReal)).plain()
        let realLoss = discriminatorLoss(realLogits, real: true)
        let dReal = Loss.meanProbability(realLogits)
        adaptive?.observe(realLogits: realLogits, batch: batch)  // before D's output buffer is reused
        _ = discriminator.backward(realLoss.gradient)

        var z = self.z ?? Tensor(shape: [batch, configuration.nz, 1, 1], zeros: false)
        if z.shape[0] != batch { z = Tensor(shape: [batch, configuration.nz, 1, 1], zeros: false) }
        configuration.latent.fill(z.buffer, dimension: configuration.nz, random: &noise)
        z.markModified()
        self.z = z
        let generated = generator.forward(z)
        // D takes plain images (as the real batch is); G's output layout may be blocked.
        var scratch = fakeImages
        let fake = generated.converted(toPlainInto: &scratch)
        fakeImages = scratch
        let fakeLogits = discriminator.forward(discriminatorInput(fake, augment: fakeAugment, augments: augments, probability: probability,
                                                                  noisy: &noisyFake)).plain()
        let fakeLoss = discriminatorLoss(fakeLogits, real: false)
        let dFake = Loss.meanProbability(fakeLogits)
        _ = discriminator.backward(fakeLoss.gradient)
        discriminatorOptimizer.step()
        guard updateGenerator else {
            return StepMetrics(lossD: realLoss.value + fakeLoss.value, lossG: lastGeneratorStep.loss, dReal: dReal, dFake: dFake,
                               dFakeAfter: lastGeneratorStep.dFake)
        }

        // (2) Update G: maximise log D(G(z)) (the non-saturating loss).
        generator.zeroGradients()
        discriminator.computesParameterGradients = false
        discriminator.needsInputGradient = true
        let logits = discriminator.forward(discriminatorInput(fake, augment: fakeAugment, augments: augments, probability: probability,
                                                              noisy: &noisyFake))
        let plainLogits = logits.plain()
        let generatorLoss: LossResult
        switch options.loss {
        case .bce: generatorLoss = Loss.binaryCrossEntropyWithLogits(plainLogits, target: 1, into: lossGradient)
        case .hinge: generatorLoss = Loss.hingeGenerator(plainLogits, into: lossGradient)
        }
        lossGradient = generatorLoss.gradient
        let dFakeAfter = Loss.meanProbability(plainLogits)
        let augmentedGradient = discriminator.backward(generatorLoss.gradient)!
        let fakeGradient = augments ? fakeAugment.backward(augmentedGradient) : augmentedGradient
        _ = generator.backward(fakeGradient)
        generatorOptimizer.step()
        discriminator.computesParameterGradients = true
        lastGeneratorStep = (generatorLoss.value, dFakeAfter)

        return StepMetrics(lossD: realLoss.value + fakeLoss.value, lossG: generatorLoss.value, dReal: dReal, dFake: dFake, dFakeAfter: dFakeAfter)
    }
}
