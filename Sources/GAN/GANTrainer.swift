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
    /// The convolutions' arithmetic (bf16: mixed precision, master weights fp32).
    public var precision: Precision = .fp32
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
    /// WGAN-GP's λ (used with `loss` wgan-gp).
    public var gp: Float = 10
    /// R1's γ (0: off), applied every `r1Interval` D steps with γ·interval (lazy, as StyleGAN2).
    public var r1: Float = 0
    public var r1Interval = 16
    /// DRAGAN's λ (0: off).
    public var dragan: Float = 0
    /// G matches the mean of D's features on real and generated batches instead of fooling D.
    public var featureMatching = false
    /// The fraction of each fake batch D sees that comes from the replay buffer (0: none).
    public var replay: Float = 0
    /// Look-ahead D steps for G's loss (unrolled GAN, first order; 0: none).
    public var unroll = 0
    /// A class-conditional model's auxiliary classification loss weight (AC-GAN's is 1).
    public var classWeight: Float = 1
    /// The weight of D's classification loss on the fakes, with the class G was asked for (nil:
    /// `classWeight`, AC-GAN's). 0: D's classifier learns the classes from labelled real images
    /// only, and G is taught them through it, so G cannot redefine a class that D then follows.
    public var fakeClassWeight: Float?
    /// The weight of G's classification loss, D's classifier asked to call each fake its class
    /// (nil: `classWeight`, AC-GAN's). 0: with a projection discriminator, G is asked only to pass
    /// as its class's real images, not to draw the ones D's classifier is surest of.
    public var generatorClassWeight: Float?
    /// Pseudo-labels: while `DCGANTrainer.pseudoLabelsActive`, an unlabelled real image whose
    /// largest class probability reaches this confidence counts as labelled with that class (0: off).
    public var pseudoLabels: Float = 0

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
        case gp, r1, r1Interval = "r1_interval", dragan, featureMatching = "feature_matching", replay, unroll
        case precision, classWeight = "class_weight", fakeClassWeight = "fake_class_weight", generatorClassWeight = "generator_class_weight", pseudoLabels = "pseudo_labels"
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
        gp = try container.decodeIfPresent(Float.self, forKey: .gp) ?? 10
        r1 = try container.decodeIfPresent(Float.self, forKey: .r1) ?? 0
        r1Interval = try container.decodeIfPresent(Int.self, forKey: .r1Interval) ?? 16
        dragan = try container.decodeIfPresent(Float.self, forKey: .dragan) ?? 0
        featureMatching = try container.decodeIfPresent(Bool.self, forKey: .featureMatching) ?? false
        replay = try container.decodeIfPresent(Float.self, forKey: .replay) ?? 0
        unroll = try container.decodeIfPresent(Int.self, forKey: .unroll) ?? 0
        precision = try container.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
        classWeight = try container.decodeIfPresent(Float.self, forKey: .classWeight) ?? 1
        fakeClassWeight = try container.decodeIfPresent(Float.self, forKey: .fakeClassWeight)
        generatorClassWeight = try container.decodeIfPresent(Float.self, forKey: .generatorClassWeight)
        pseudoLabels = try container.decodeIfPresent(Float.self, forKey: .pseudoLabels) ?? 0
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
    /// The gradient penalties' value this step (included in lossD; nil when none ran).
    public var penalty: Float?
    /// A conditional model's auxiliary classification loss in D's step, real and fake terms
    /// (included in lossD).
    public var classLoss: Float?
    /// Unlabelled real images of the batch that got a pseudo-label.
    public var pseudoLabelled: Int?

    enum CodingKeys: String, CodingKey {
        case lossD = "loss_d", lossG = "loss_g", dReal = "d_real", dFake = "d_fake", dFakeAfter = "d_fake_after", penalty
        case classLoss = "class_loss", pseudoLabelled = "pseudo_labelled"
    }
}

/// A generator, a discriminator, their Adam optimisers and the noise generator: everything a
/// training step touches, and so everything a checkpoint holds.
public final class DCGANTrainer {
    public let configuration: DCGANConfiguration
    public let options: StepOptions
    public let generator: Generator
    public let discriminator: Discriminator
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
    /// Draws the penalties' interpolation weights and DRAGAN's perturbations (checkpointed).
    public var penaltyRandom: SeededRandom
    /// Earlier fakes, when `options.replay` > 0 (checkpointed).
    public var replayBuffer: ReplayBuffer?
    public static let replayCapacity = 512
    /// Whether D's classifier is good enough for pseudo-labels (set by the run from its held-out
    /// labelled images; checkpointed).
    public var pseudoLabelsActive = false
    /// The last generator update's loss and mean D(G(z)): what a step that only updates D reports.
    public var lastGeneratorStep: (loss: Float, dFake: Float) = (0, 0.5)
    private let realAugment: DiffAugment
    private let fakeAugment: DiffAugment
    private var z: Tensor?
    private var fakeImages: Tensor?
    /// A conditional model's classes of this step's fakes.
    private var fakeClasses: [Int] = []
    private var classGradient: Tensor?
    private var replayedFakes: Tensor?
    private var lossGradient: Tensor?
    private var noisyReal: Tensor?
    private var noisyFake: Tensor?
    private var penaltyPoints: Tensor?
    private var plainFeatures: Tensor?
    /// The mean of D's features on the last real batch (feature matching's target).
    private var realFeatureMean: [Float] = []
    private let penaltyScratch = PenaltyScratch()

    /// Weights N(0, 0.02), BatchNorm scale N(1, 0.02), from `seed`.
    public init(configuration: DCGANConfiguration, options: StepOptions, seed: UInt64) {
        self.configuration = configuration
        self.options = options
        generator = DCGAN.generator(configuration, backend: options.backend)
        discriminator = Discriminator(configuration, backend: options.backend, seed: seed &+ 17)
        generator.setPrecision(options.precision)
        discriminator.setPrecision(options.precision)
        var random = SeededRandom(seed: seed)
        Initialization.dcgan(generator.layers, random: &random)
        Initialization.dcgan(discriminator.layers, random: &random)
        generatorOptimizer = Adam(parameters: generator.parameters, learningRate: options.generatorLearningRate, beta1: options.beta1, beta2: options.beta2)
        discriminatorOptimizer = Adam(parameters: discriminator.parameters, learningRate: options.discriminatorLearningRate, beta1: options.beta1, beta2: options.beta2)
        noise = SeededRandom(seed: seed &+ 1)
        augmentationRandom = SeededRandom(seed: seed &+ 2)
        instanceNoiseRandom = SeededRandom(seed: seed &+ 3)
        penaltyRandom = SeededRandom(seed: seed &+ 4)
        if options.replay > 0 {
            replayBuffer = ReplayBuffer(capacity: DCGANTrainer.replayCapacity,
                                        imageSize: configuration.channels * configuration.imageSize * configuration.imageSize, seed: seed &+ 5)
        }
        realAugment = DiffAugment(policy: options.diffAugment)
        fakeAugment = DiffAugment(policy: options.diffAugment)
        adaptive = options.adaTarget.map(AdaptiveAugmentation.init(target:))
    }

    /// Whether D sees augmented images this step (an adaptive p of 0 is no augmentation at all).
    private var augments: Bool { !options.diffAugment.isEmpty && augmentProbability > 0 }

    /// G's input for z from the configuration's prior, [batch, nz (+ K), 1, 1]; a conditional
    /// model's classes are `classes`, or balanced (image i of class i mod K).
    public func sampleNoise(batch: Int, classes: [Int]? = nil, random: inout SeededRandom) -> Tensor {
        configuration.generatorInput(latents: configuration.latents(count: batch, random: &random), classes: classes)
    }

    /// Each loss's gradient is consumed by the backward pass before the next loss is computed, so
    /// one buffer serves them all.
    /// `plain`: D's logits in plain layout.
    private func discriminatorLoss(_ plain: Tensor, real: Bool) -> LossResult {
        let result: LossResult
        switch options.loss {
        case .bce: result = Loss.binaryCrossEntropyWithLogits(plain, target: real ? options.realLabel : 0, into: lossGradient)
        case .hinge: result = Loss.hinge(plain, sign: real ? 1 : -1, into: lossGradient)
        case .wganGP: result = Loss.critic(plain, sign: real ? 1 : -1, into: lossGradient)
        }
        lossGradient = result.gradient
        return result
    }

    private func generatorAdversarialLoss(_ plain: Tensor) -> LossResult {
        let result: LossResult
        switch options.loss {
        case .bce: result = Loss.binaryCrossEntropyWithLogits(plain, target: 1, into: lossGradient)
        case .hinge, .wganGP: result = Loss.critic(plain, sign: 1, into: lossGradient)
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

    /// One iteration, in the phases of StyleGAN2-ADA's loss: G makes a batch of fakes; **Dmain**
    /// (D's loss on the real batch, then on the fakes, each batch through BatchNorm on its own, as
    /// PyTorch's DCGAN example); **Dreg** (the gradient penalties' weight gradients, added to
    /// Dmain's); D steps; then, every `discriminatorSteps`-th call, **Gmain** (G's loss through D,
    /// against a look-ahead copy of D when unrolling) and G steps. With `updateGenerator` false only
    /// D steps, and the last G step's figures are reported.
    /// `real`: [batch, C, S, S] in [-1, 1]; `classes`: each real image's class index, −1 where
    /// unlabelled (conditional models).
    @discardableResult
    public func step(real: Tensor, classes: [Int]? = nil, updateGenerator: Bool = true) -> StepMetrics {
        // Fixed for the whole step: p moves only after it.
        let augments = self.augments, probability = augmentProbability
        let fake = generateFakes(batch: real.shape[0])
        let seenFake = replayMix(fake)

        discriminator.zeroGradients()
        let main = discriminatorMain(real: real, classes: classes, fake: seenFake, augments: augments, probability: probability, observe: true)
        let penalty = discriminatorRegularization(real: main.realInput, classes: configuration.isConditional ? classes : nil, fake: main.fakeInput)
        discriminatorOptimizer.step()
        if replayBuffer != nil { replayBuffer!.store(fake) }
        let lossD = main.loss + (penalty ?? 0)
        guard updateGenerator else {
            return StepMetrics(lossD: lossD, lossG: lastGeneratorStep.loss, dReal: main.dReal, dFake: main.dFake,
                               dFakeAfter: lastGeneratorStep.dFake, penalty: penalty, classLoss: main.classLoss, pseudoLabelled: main.pseudoLabelled)
        }

        let saved = options.unroll > 0
            ? unrollDiscriminator(real: real, classes: classes, fake: seenFake, augments: augments, probability: probability) : nil
        let generatorStep = generatorMain(fake: fake, augments: augments, probability: probability)
        if let saved { saved.restore(into: self) }
        generatorOptimizer.step()
        lastGeneratorStep = generatorStep
        return StepMetrics(lossD: lossD, lossG: generatorStep.loss, dReal: main.dReal, dFake: main.dFake,
                           dFakeAfter: generatorStep.dFake, penalty: penalty, classLoss: main.classLoss, pseudoLabelled: main.pseudoLabelled)
    }

    /// G(z) for a fresh z, in plain layout (as the real batch is); G keeps what its backward needs.
    /// A conditional model's fakes are class-balanced: consecutive classes from a random first one.
    private func generateFakes(batch: Int) -> Tensor {
        var z = self.z ?? Tensor(shape: [batch, configuration.nz, 1, 1], zeros: false)
        if configuration.isConditional {
            let count = configuration.classes.count
            let first = min(Int(noise.nextUniform() * Float(count)), count - 1)
            fakeClasses = (0..<batch).map { (first + $0) % count }
            z = configuration.generatorInput(latents: configuration.latents(count: batch, random: &noise), classes: fakeClasses)
        } else {
            if z.shape[0] != batch { z = Tensor(shape: [batch, configuration.nz, 1, 1], zeros: false) }
            configuration.latent.fill(z.buffer, dimension: configuration.nz, random: &noise)
            z.markModified()
        }
        self.z = z
        let generated = generator.forward(z)
        var scratch = fakeImages
        let fake = generated.converted(toPlainInto: &scratch)
        fakeImages = scratch
        return fake
    }

    /// The fake batch D sees: with replay, part of it from the buffer.
    private func replayMix(_ fake: Tensor) -> Tensor {
        guard replayBuffer != nil else { return fake }
        let mixed = replayedFakes ?? Tensor(shape: [1], zeros: false)
        replayedFakes = mixed
        replayBuffer!.mix(fake, fraction: options.replay, into: mixed)
        return mixed
    }

    /// Dmain: D's adversarial loss on the real batch and on the fakes, weight gradients accumulated
    /// (not stepped). Returns what D saw (for Dreg) and the figures the log shows. With `observe`,
    /// the adaptive augmentation hears D's real logits (not during a look-ahead).
    /// A conditional model's D also learns the classes (AC-GAN): of the labelled real images and of
    /// the fakes, the class G was asked for.
    private func discriminatorMain(real: Tensor, classes: [Int]?, fake: Tensor, augments: Bool, probability: Float, observe: Bool)
        -> (loss: Float, dReal: Float, dFake: Float, classLoss: Float?, pseudoLabelled: Int?, realInput: Tensor, fakeInput: Tensor) {
        discriminator.computesParameterGradients = true
        discriminator.needsInputGradient = false
        let realInput = discriminatorInput(real, augment: realAugment, augments: augments, probability: probability, noisy: &noisyReal)
        let realLogits = discriminator.forward(realInput, classes: configuration.isConditional ? classes : nil).plain()
        let realLoss = discriminatorLoss(realLogits, real: true)
        let dReal = Loss.meanProbability(realLogits)
        if observe { adaptive?.observe(realLogits: realLogits, batch: real.shape[0]) }  // before D's output buffer is reused
        if options.featureMatching { realFeatureMean = Loss.meanRow(discriminator.features!.converted(toPlainInto: &plainFeatures)) }
        var realClasses = classes ?? [Int](repeating: -1, count: real.shape[0])
        var pseudoLabelled: Int?
        if configuration.isConditional && pseudoLabelsActive && options.pseudoLabels > 0 {
            pseudoLabelled = pseudoLabel(&realClasses)
        }
        let realClassLoss = classification(realClasses)
        _ = discriminator.backward(realLoss.gradient, classGradient: realClassLoss?.gradient)

        let fakeInput = discriminatorInput(fake, augment: fakeAugment, augments: augments, probability: probability, noisy: &noisyFake)
        let fakeLogits = discriminator.forward(fakeInput, classes: configuration.isConditional ? fakeClasses : nil).plain()
        let fakeLoss = discriminatorLoss(fakeLogits, real: false)
        let dFake = Loss.meanProbability(fakeLogits)
        let fakeClassLoss = options.fakeClassWeight == 0 ? nil : classification(fakeClasses, weight: options.fakeClassWeight)
        _ = discriminator.backward(fakeLoss.gradient, classGradient: fakeClassLoss?.gradient)
        let classLoss = realClassLoss.map { $0.value + (fakeClassLoss?.value ?? 0) }
        return (realLoss.value + fakeLoss.value + (classLoss ?? 0), dReal, dFake, classLoss, pseudoLabelled, realInput, fakeInput)
    }

    /// Gives each unlabelled row of D's last forward whose largest class probability reaches
    /// `pseudoLabels` that class; returns how many it labelled.
    private func pseudoLabel(_ labels: inout [Int]) -> Int {
        let logits = discriminator.classify()
        let width = logits.count / logits.shape[0]
        var labelled = 0
        for row in labels.indices where labels[row] < 0 {
            let probabilities = Loss.softmax(UnsafeBufferPointer(start: logits.data + row * width, count: width))
            let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            if probabilities[best] >= options.pseudoLabels {
                labels[row] = best
                labelled += 1
            }
        }
        return labelled
    }

    /// The fraction of `images` (plain [N, C, S, S]) D's classifier head puts in `classes`, D in
    /// evaluation mode: how the run decides the classifier is good enough for pseudo-labels.
    public func classifierAccuracy(images: Tensor, classes: [Int]) -> Double {
        discriminator.isTraining = false
        defer { discriminator.isTraining = true }
        discriminator.forwardFeatures(images)
        let logits = discriminator.classify()
        let width = logits.count / logits.shape[0]
        var correct = 0
        for (row, label) in classes.enumerated() {
            let values = UnsafeBufferPointer(start: logits.data + row * width, count: width)
            if values.indices.max(by: { values[$0] < values[$1] }) == label { correct += 1 }
        }
        return Double(correct) / Double(max(classes.count, 1))
    }

    /// A conditional model's auxiliary loss on D's last forward: cross-entropy of its class logits
    /// against `labels` (−1: unlabelled), times `weight` (default `classWeight`). nil for an
    /// unconditional model.
    private func classification(_ labels: [Int], weight: Float? = nil) -> LossResult? {
        guard configuration.isConditional else { return nil }
        let result = Loss.softmaxCrossEntropy(discriminator.classify(), labels: labels, weight: weight ?? options.classWeight, into: classGradient)
        classGradient = result.gradient
        return result
    }

    /// Dreg: each gradient penalty's weight gradients added to D's; returns their sum (nil: none ran).
    /// R1 at the real images D saw, every `r1Interval` D steps with γ·interval (StyleGAN2's lazy
    /// regularisation); DRAGAN around them; WGAN-GP between them and the fakes D saw.
    /// A projection discriminator's R1 scores the real images with their `classes`.
    private func discriminatorRegularization(real: Tensor, classes: [Int]?, fake: Tensor) -> Float? {
        var total: Float?
        func add(_ points: Tensor, _ penalty: GradientPenalty, classes: [Int]? = nil) {
            total = (total ?? 0) + discriminator.accumulatePenaltyGradient(at: points, classes: classes, penalty: penalty, scratch: penaltyScratch)
        }
        if options.r1 > 0 && discriminatorOptimizer.stepCount % options.r1Interval == 0 {
            add(real.plain(), .squaredNorm(weight: options.r1 * Float(options.r1Interval)), classes: classes)
        }
        if options.dragan > 0 { add(draganPoints(around: real.plain()), .unitNorm(weight: options.dragan)) }
        if options.loss == .wganGP { add(interpolates(real.plain(), fake.plain()), .unitNorm(weight: options.gp)) }
        return total
    }

    /// x̂ = α·real + (1 − α)·fake, one α ~ U[0, 1] per image (WGAN-GP).
    private func interpolates(_ real: Tensor, _ fake: Tensor) -> Tensor {
        let points = penaltyPoints ?? Tensor(shape: [1], zeros: false)
        penaltyPoints = points
        points.reshape(to: real.shape)
        let size = real.count / real.shape[0]
        for n in 0..<real.shape[0] {
            let alpha = penaltyRandom.nextUniform()
            for i in n * size..<(n + 1) * size { points.data[i] = alpha * real.data[i] + (1 - alpha) * fake.data[i] }
        }
        points.markModified()
        return points
    }

    /// x̂ = x + α·δ with δ = ½·std(x)·U[0, 1] per pixel and one α ~ U[0, 1] per image: DRAGAN's
    /// points near the real data (Kodali et al. 2017's reference code).
    private func draganPoints(around real: Tensor) -> Tensor {
        let points = penaltyPoints ?? Tensor(shape: [1], zeros: false)
        penaltyPoints = points
        points.reshape(to: real.shape)
        var sum = 0.0, squares = 0.0
        for i in 0..<real.count { sum += Double(real.data[i]); squares += Double(real.data[i] * real.data[i]) }
        let mean = sum / Double(real.count)
        let deviation = Float(max(squares / Double(real.count) - mean * mean, 0).squareRoot())
        let size = real.count / real.shape[0]
        for n in 0..<real.shape[0] {
            let alpha = penaltyRandom.nextUniform()
            for i in n * size..<(n + 1) * size { points.data[i] = real.data[i] + alpha * 0.5 * deviation * penaltyRandom.nextUniform() }
        }
        points.markModified()
        return points
    }

    /// Gmain: G's loss through D (D computes no weight gradients, since nothing would use them),
    /// back to G's weights. Adversarial, or feature matching: G moves the mean of D's features on
    /// its batch towards the mean Dmain saw on the real batch.
    private func generatorMain(fake: Tensor, augments: Bool, probability: Float) -> (loss: Float, dFake: Float) {
        generator.zeroGradients()
        discriminator.computesParameterGradients = false
        discriminator.needsInputGradient = true
        defer { discriminator.computesParameterGradients = true }
        let input = discriminatorInput(fake, augment: fakeAugment, augments: augments, probability: probability, noisy: &noisyFake)
        let logits = discriminator.forward(input, classes: configuration.isConditional ? fakeClasses : nil).plain()
        let dFakeAfter = Loss.meanProbability(logits)
        let augmentedGradient: Tensor
        let loss: Float
        if options.featureMatching {
            let features = discriminator.features!.converted(toPlainInto: &plainFeatures)
            let matching = Loss.featureMatching(features, realMean: realFeatureMean, into: lossGradient)
            lossGradient = matching.gradient
            let classLoss = generatorClassification()
            loss = matching.value + (classLoss?.value ?? 0)
            augmentedGradient = discriminator.backward(nil, featureGradient: matching.gradient, classGradient: classLoss?.gradient)!
        } else {
            let adversarial = generatorAdversarialLoss(logits)
            let classLoss = generatorClassification()
            loss = adversarial.value + (classLoss?.value ?? 0)
            augmentedGradient = discriminator.backward(adversarial.gradient, classGradient: classLoss?.gradient)!
        }
        let fakeGradient = augments ? fakeAugment.backward(augmentedGradient) : augmentedGradient
        _ = generator.backward(fakeGradient)
        return (loss, dFakeAfter)
    }

    /// Gmain's classification term on D's last forward (the fakes): nil where it is weighted 0.
    private func generatorClassification() -> LossResult? {
        options.generatorClassWeight == 0 ? nil : classification(fakeClasses, weight: options.generatorClassWeight)
    }

    /// The unrolled GAN's look-ahead (Metz et al. 2017), first-order form: D takes `unroll` more
    /// steps on this step's real batch and fakes; G's loss is then taken against that D, and its
    /// gradient does not flow back through the look-ahead steps. Returns D as it was, to restore.
    private func unrollDiscriminator(real: Tensor, classes: [Int]?, fake: Tensor, augments: Bool, probability: Float) -> DiscriminatorState {
        let saved = DiscriminatorState(self)
        for _ in 0..<options.unroll {
            discriminator.zeroGradients()
            _ = discriminatorMain(real: real, classes: classes, fake: fake, augments: augments, probability: probability, observe: false)
            discriminatorOptimizer.step()
        }
        return saved
    }
}

/// A copy of everything a D step changes: weights, Adam's moments and step count, BatchNorm's
/// running statistics, dropout's generators.
struct DiscriminatorState {
    let tensors: [Tensor]
    let adamSteps: Int
    let batchesTracked: [Int64]
    let dropoutStates: [UInt64]

    private static func stateTensors(_ trainer: DCGANTrainer) -> [Tensor] {
        let norms = trainer.discriminator.layers.compactMap { $0 as? BatchNorm2d }
        return trainer.discriminator.parameters.map(\.value) + trainer.discriminatorOptimizer.firstMoments
            + trainer.discriminatorOptimizer.secondMoments + norms.flatMap { [$0.runningMean, $0.runningVariance] }
    }

    init(_ trainer: DCGANTrainer) {
        tensors = DiscriminatorState.stateTensors(trainer).map { $0.clone() }
        adamSteps = trainer.discriminatorOptimizer.stepCount
        batchesTracked = trainer.discriminator.layers.compactMap { ($0 as? BatchNorm2d)?.batchesTracked }
        dropoutStates = trainer.discriminator.layers.compactMap { ($0 as? Dropout)?.random.state }
    }

    func restore(into trainer: DCGANTrainer) {
        for (target, source) in zip(DiscriminatorState.stateTensors(trainer), tensors) { target.copy(from: source) }
        trainer.discriminatorOptimizer.stepCount = adamSteps
        for (norm, tracked) in zip(trainer.discriminator.layers.compactMap { $0 as? BatchNorm2d }, batchesTracked) { norm.batchesTracked = tracked }
        for (dropout, state) in zip(trainer.discriminator.layers.compactMap { $0 as? Dropout }, dropoutStates) { dropout.random = SeededRandom(seed: state) }
    }
}
