import ArgumentParser
import Foundation
import GAN
import NN

/// Set by SIGINT; the training loop checks it after each step.
nonisolated(unsafe) private var interruptRequested = false

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a DCGAN on a prepared dataset (checkpoints, exact resume, sample grids, metrics).")

    @Option(help: "A prepared dataset folder (darkroom prepare).")
    var data: String
    @Option(help: "The run folder.")
    var out: String
    @Option(help: "Training length in epochs (default 25), or use --kimg.")
    var epochs: Int?
    @Option(help: "Training length in thousands of real images shown (the unit for small folders); replaces --epochs.")
    var kimg: Double?
    @Option(help: "With --kimg: a sample grid and a numbered checkpoint every this many kimg (default: a tenth of the run).")
    var snapshotKimg: Double?
    @Option var batch = 64
    @Option var nz = 100
    @Option var ngf = 64
    @Option var ndf = 64
    @Option(help: "Adam's learning rate for both networks.")
    var lr: Float = 2e-4
    @OptionGroup var remedies: RemedyOptions
    @Option var beta1: Float = 0.5
    @Option var seed: UInt64 = 1
    @Flag(help: "Continue from RUN/checkpoints/latest.safetensors.")
    var resume = false
    @Option(help: "One-sided label smoothing: D's target for real images (e.g. 0.9).")
    var realLabel: Float = 1
    @Option(help: "Augmentation of every image D sees: auto (ada for datasets up to \(TrainOptions.adaptiveAugmentationLimit) images, else off), off, ada (adaptive probability, StyleGAN2-ADA), ada:POLICY, or a fixed POLICY (any of color,translation,cutout).")
    var augment = "auto"
    @Option(help: "A fixed DiffAugment policy (the same as --augment POLICY).")
    var diffaugment: String?
    @Option(help: "Dropout probability in the discriminator blocks.")
    var dropout: Float = 0
    @Option(help: "Keep an exponential moving average of G with this decay per step (e.g. 0.999) for samples.")
    var ema: Float?
    @Option(help: "Keep the moving average with this half-life in kimg (StyleGAN2-ADA uses 10), instead of --ema.")
    var emaKimg: Double?
    @Option(help: "The average's half-life is at most this fraction of the images seen so far (0: no ramp-up).")
    var emaRampup = 0.05
    @Option(help: "Write a numbered checkpoint every this many epochs (latest is always kept).")
    var checkpointEvery = 1
    @Option(help: "Also write a sample grid every this many iterations.")
    var sampleEvery: Int?
    @Option(help: "A metrics line every this many iterations (and at each epoch's end).")
    var logEvery = 50
    @Option(help: "fast (oneDNN) or reference (plain Swift, slow).")
    var backend = "fast"
    @Option(help: "Evaluate the sampling generator every this many kimg (fd, precision, recall, ndb in metrics.jsonl) and keep checkpoints/best.safetensors at the lowest fd; default a tenth of the run but at least 8 kimg apart per 1000 --eval-count images (under 5% of training time), 0 never.")
    var evalEvery: Double?
    @Option(help: "Real and synthetic images per evaluation during training.")
    var evalCount = 1000

    @OptionGroup var precision: PrecisionOption
    @Option(help: "A path,label CSV labelling any subset of the images (paths as in the dataset's index.csv): train a class-conditional DCGAN (AC-GAN) on all of them.")
    var labels: String?
    @Option(help: "With --labels: the weight of the auxiliary classification loss (AC-GAN: 1).")
    var classWeight: Float = 1
    @Option(help: "With --labels: the weight of D's classification loss on the fakes (default --class-weight, AC-GAN's; 0: D's classifier learns from labelled real images only).")
    var fakeClassWeight: Float?
    @Option(help: "With --labels: the weight of G's classification loss, D's classifier asked to call each fake its class (default --class-weight, AC-GAN's; 0: with --projection, G is asked only to pass as its class's real images).")
    var generatorClassWeight: Float?
    @Option(help: "With --labels: labelled images added to every real batch (default: a quarter of --batch while under half the images are labelled, else 0).")
    var labelledBatch: Int?
    @Option(help: "With --labels: a labeller (label --save-labeller) that gives every image the labels leave unlabelled, each time it is shown, a class drawn from its probabilities.")
    var labeller: String?
    @Option(help: "With --labels: pseudo-label unlabelled real images whose largest class probability reaches this confidence (e.g. 0.95), once D's classifier reaches 80% on a held-out tenth of the labelled images (0: off).")
    var pseudoLabels: Float = 0
    @Flag(help: "With --labels: D also scores each real image with its label and each fake with its class (a projection discriminator, Miyato & Koyama 2018).")
    var projection = false
    @Flag(help: "With --labels: G scales and shifts every BatchNorm's channels by the class (BigGAN's conditional BatchNorm), beside its one-hot input.")
    var classNorm = false

    func validate() throws {
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be positive") }
        if let kimg, !(kimg > 0) { throw ValidationError("--kimg must be positive") }
        if epochs != nil && kimg != nil { throw ValidationError("give --epochs or --kimg, not both") }
        if let snapshotKimg, !(snapshotKimg > 0) || kimg == nil { throw ValidationError("--snapshot-kimg must be positive and comes with --kimg") }
        if diffaugment != nil && augment != "auto" { throw ValidationError("give --augment or --diffaugment, not both") }
        if let emaKimg, !(emaKimg >= 0) { throw ValidationError("--ema-kimg must be 0 or more") }
        if ema != nil && emaKimg != nil { throw ValidationError("give --ema or --ema-kimg, not both") }
        guard emaRampup >= 0 else { throw ValidationError("--ema-rampup must be 0 or more") }
        guard batch >= 1, nz >= 1, ngf >= 1, ndf >= 1 else { throw ValidationError("--epochs, --batch, --nz, --ngf and --ndf must be positive") }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1)") }
        if let ema, !(0..<1).contains(ema) { throw ValidationError("--ema must be in [0, 1)") }
        guard lr > 0, (0..<1).contains(beta1), (0...1).contains(realLabel) else { throw ValidationError("--lr must be positive, --beta1 in [0, 1), --real-label in [0, 1]") }
        guard checkpointEvery >= 1, logEvery >= 1, sampleEvery.map({ $0 >= 1 }) ?? true else { throw ValidationError("--checkpoint-every, --log-every and --sample-every must be at least 1") }
        if let evalEvery, !(evalEvery >= 0) { throw ValidationError("--eval-every must be 0 or more") }
        guard pseudoLabels >= 0 && pseudoLabels <= 1 else { throw ValidationError("--pseudo-labels must be a confidence in [0, 1]") }
        guard classWeight >= 0, fakeClassWeight.map({ $0 >= 0 }) ?? true, generatorClassWeight.map({ $0 >= 0 }) ?? true, labelledBatch.map({ $0 >= 0 }) ?? true else {
            throw ValidationError("--class-weight, --fake-class-weight, --generator-class-weight and --labelled-batch must be 0 or more")
        }
        if projection && labels == nil { throw ValidationError("--projection comes with --labels") }
        if classNorm && labels == nil { throw ValidationError("--class-norm comes with --labels") }
        if labeller != nil && labels == nil { throw ValidationError("--labeller comes with --labels") }
        if labeller != nil && pseudoLabels > 0 { throw ValidationError("--labeller and --pseudo-labels both label the unlabelled images; give one") }
        guard evalCount >= 100 else { throw ValidationError("--eval-count must be at least 100") }
        guard Backend(rawValue: backend) != nil else { throw ValidationError("--backend must be fast or reference") }
        if let diffaugment, DiffAugmentPolicy(diffaugment) == nil { throw ValidationError("--diffaugment takes color, translation and/or cutout, comma-separated") }
        do { _ = try options(data: "", out: "").resolvedStep(datasetCount: 0) } catch { throw ValidationError("\(error)") }
    }

    func options(data: String, out: String) -> TrainOptions {
        var options = TrainOptions(data: data, out: out)
        options.epochs = epochs ?? 25
        options.kimg = kimg
        options.snapshotKimg = snapshotKimg
        options.batch = batch
        options.seed = seed
        options.nz = nz
        options.ngf = ngf
        options.ndf = ndf
        options.dropout = dropout
        options.step = StepOptions(learningRate: lr, beta1: beta1, realLabel: realLabel, backend: Backend(rawValue: backend)!)
        options.augment = diffaugment ?? augment
        options.ema = ema
        options.emaKimg = emaKimg
        options.emaRampup = emaRampup
        remedies.apply(to: &options)
        options.step.precision = Precision(rawValue: precision.precision)!
        options.labels = labels
        options.step.classWeight = classWeight
        if let fakeClassWeight { options.step.fakeClassWeight = fakeClassWeight }
        if let generatorClassWeight { options.step.generatorClassWeight = generatorClassWeight }
        options.labelledBatch = labelledBatch
        options.labeller = labeller
        options.projection = projection
        options.classNorm = classNorm
        options.step.pseudoLabels = pseudoLabels
        options.checkpointEvery = checkpointEvery
        options.sampleEvery = sampleEvery
        options.logEvery = logEvery
        options.evalEvery = evalEvery
        options.evalCount = evalCount
        options.resume = resume
        return options
    }

    func run() throws {
        var options = options(data: data, out: out)
        options.step.precision = precision.resolved
        let training = try TrainingRun(options: options)
        signal(SIGINT) { _ in interruptRequested = true }
        let step = training.trainer.options
        if !step.diffAugment.isEmpty {
            Console.note("augmenting what D sees (\(step.diffAugment.description)) " + (step.adaTarget.map { String(format: "adaptively (ADA, target r_t %.1f; p starts at 0)", $0) } ?? "always"))
        }
        let totalIterations = training.totalIterations ?? training.loader.batchesPerEpoch * options.epochs
        let outcome = try training.train(report: { line, isLogLine in
            let done = line.iteration
            let remaining = Double(totalIterations - done) * Double(batch) / max(line.imagesPerSecond, 1e-9)
            let position = kimg.map { String(format: "kimg %.1f/%g", line.kimg ?? 0, $0) }
                ?? String(format: "epoch %d/%d  iter %d/%d", line.epoch, options.epochs, done, totalIterations)
            let augmentation = (line.augmentP.map { String(format: "  p %.3f", $0) } ?? "")
                + (line.penalty.map { String(format: "  penalty %.3f", $0) } ?? "")
                + (line.fd.map { String(format: "  fd %.3f  precision %.2f  recall %.2f", $0, line.precision ?? .nan, line.recall ?? .nan) } ?? "")
            let text = String(format: "%@  %.0f img/s  ETA %@  loss_d %.3f  loss_g %.3f  D(x) %.2f  D(G(z)) %.2f%@",
                              position, line.imagesPerSecond, formatDuration(remaining), line.lossD, line.lossG, line.dReal, line.dFake, augmentation)
            if Console.isTerminal { Console.progress(text) } else if isLogLine { Console.note(text) }
        }, note: { Console.endProgress(); Console.note($0) }, stopRequested: { interruptRequested })
        Console.endProgress()
        guard outcome == .finished else { throw ExitCode(130) }

        let summary = try training.writeSummary()
        let memorisation = summary.memorisation
        Console.note(String(format: "trained %@; samples in %@/samples, checkpoints in %@/checkpoints; nearest-neighbour distance of samples to the data %.3f vs %.3f between real images (ratio %.2f)",
                            kimg.map { String(format: "%g kimg", $0) } ?? "\(options.epochs) epochs", out, out,
                            memorisation.sampleDistanceMedian, memorisation.realDistanceMedian, memorisation.medianRatio))
        if let diversity = summary.diversity {
            Console.note((diversity.isHealthy ? "" : "WARNING: ") + diversity.message)
        }
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60) : String(format: "%d:%02d", total / 60, total % 60)
}
