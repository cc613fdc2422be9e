import ArgumentParser
import GAN

/// The loss and the failure-mode remedies: `train`'s flags, shared with `bench train-step` so each
/// remedy's cost can be timed. Every flag is optional: one left out keeps the default, or the
/// value `--preset` gave it.
struct RemedyOptions: ParsableArguments {
    @Option(help: "A named bundle of the options below (explicit flags override it): quality (README, \"Stabilisers\").")
    var preset: String?
    @Option(help: "bce (non-saturating, default), hinge, or wgan-gp (Wasserstein critic with gradient penalty --gp).")
    var loss: String?
    @Option(help: "The discriminator's own learning rate (two time-scale update rule; default --lr).")
    var lrD: Float?
    @Option(help: "The generator's own learning rate (default --lr).")
    var lrG: Float?
    @Option(help: "The latent prior: normal (default), or sphere (normal z scaled to radius √nz).")
    var noise: String?
    @Option(help: "Discriminator updates per generator update (default 1).")
    var dSteps: Int?
    @Option(help: "Gaussian noise of this σ on every image D sees, annealed linearly to 0 over the run.")
    var instanceNoise: Float?
    @Option(help: "With --loss wgan-gp: the gradient penalty's λ (default 10).")
    var gp: Float?
    @Option(help: "R1 penalty γ on real images, applied lazily every 16 D steps.")
    var r1: Float?
    @Option(help: "DRAGAN penalty λ around perturbed real images.")
    var dragan: Float?
    @Flag(help: "The generator matches the mean of D's last-block features on real and generated batches instead of fooling D.")
    var featureMatching = false
    @Option(help: "The fraction of each fake batch D sees drawn from a buffer of earlier generated images.")
    var replay: Float?
    @Option(help: "Unrolled GAN: G's loss is taken against D after this many look-ahead D steps (first-order), then D is restored.")
    var unroll: Int?
    @Flag(help: "A minibatch standard deviation channel before D's last convolution.")
    var minibatchStd = false
    @Option(help: "How G doubles resolution: transposed (4×4 stride-2 transposed convs, default) or upsample (nearest ×2 + 3×3 conv).")
    var generator: String?
    @Option(help: "D's normalisation: batch or none (default: none with --loss wgan-gp, else batch).")
    var dNorm: String?

    func validate() throws {
        if let preset, TrainPreset(rawValue: preset) == nil { throw ValidationError("--preset must be one of \(TrainPreset.allCases.map(\.rawValue).joined(separator: ", "))") }
        if let loss, GANLoss(rawValue: loss) == nil { throw ValidationError("--loss must be bce, hinge or wgan-gp") }
        if let noise, LatentPrior(rawValue: noise) == nil { throw ValidationError("--noise must be normal or sphere") }
        guard lrD.map({ $0 > 0 }) ?? true, lrG.map({ $0 > 0 }) ?? true else { throw ValidationError("--lr-d and --lr-g must be positive") }
        guard dSteps.map({ $0 >= 1 }) ?? true, instanceNoise.map({ $0 >= 0 }) ?? true else { throw ValidationError("--d-steps must be at least 1, --instance-noise 0 or more") }
        guard [gp, r1, dragan].allSatisfy({ $0.map { $0 >= 0 } ?? true }) else { throw ValidationError("--gp, --r1 and --dragan must be 0 or more") }
        guard replay.map({ (0...1).contains($0) }) ?? true, unroll.map({ $0 >= 0 }) ?? true else { throw ValidationError("--replay must be in [0, 1], --unroll 0 or more") }
        if let generator, GeneratorKind(rawValue: generator) == nil { throw ValidationError("--generator must be transposed or upsample") }
        if let dNorm, DiscriminatorNorm(rawValue: dNorm) == nil { throw ValidationError("--d-norm must be batch or none") }
    }

    /// The preset, then every flag given.
    func apply(to options: inout TrainOptions) {
        if let preset { TrainPreset(rawValue: preset)!.apply(to: &options) }
        if let loss { options.step.loss = GANLoss(rawValue: loss)! }
        if let lrD { options.step.lrD = lrD }
        if let lrG { options.step.lrG = lrG }
        if let noise { options.noise = LatentPrior(rawValue: noise)! }
        if let dSteps { options.step.discriminatorSteps = dSteps }
        if let instanceNoise { options.step.instanceNoise = instanceNoise }
        if let gp { options.step.gp = gp }
        if let r1 { options.step.r1 = r1 }
        if let dragan { options.step.dragan = dragan }
        if featureMatching { options.step.featureMatching = true }
        if let replay { options.step.replay = replay }
        if let unroll { options.step.unroll = unroll }
        if minibatchStd { options.minibatchStd = true }
        if let generator { options.generator = GeneratorKind(rawValue: generator)! }
        if let dNorm { options.discriminatorNorm = DiscriminatorNorm(rawValue: dNorm)! }
    }
}
