import Dataset
import Evaluation
import Foundation
import Formats
import Imaging
import NN

/// A named bundle of train options, chosen by measurement (README, "Stabilisers").
public enum TrainPreset: String, Codable, Sendable, CaseIterable {
    /// The best combination measured on Fashion-MNIST at 5 epochs: R1 (γ 0.01, lazy) and a
    /// generator average with a 10-kimg half-life (unless the run sets its own average); with
    /// labels, D's classifier taught by the labelled real images only (fake class weight 0).
    case quality

    public func apply(to options: inout TrainOptions) {
        switch self {
        case .quality:
            options.step.r1 = 0.01
            if options.ema == nil && options.emaKimg == nil { options.emaKimg = 10 }
            if options.step.fakeClassWeight == nil { options.step.fakeClassWeight = 0 }
        }
        options.preset = self
    }
}

/// The `train` options. Written to RUN/config.json.
public struct TrainOptions: Codable, Sendable {
    public var data: String
    public var out: String
    /// Training length in epochs, unless `kimg` is set.
    public var epochs = 25
    /// Training length in thousands of real images shown (StyleGAN's unit): the run stops
    /// mid-epoch if it must, and samples and checkpoints every `snapshotKimg` instead of per epoch.
    public var kimg: Double?
    /// With `kimg`: a sample grid and a numbered checkpoint every this many kimg (default: a tenth of the run).
    public var snapshotKimg: Double?
    public var batch = 64
    public var seed: UInt64 = 1
    public var nz = 100
    public var ngf = 64
    public var ndf = 64
    public var dropout: Float = 0
    public var noise: LatentPrior = .normal
    /// D's normalisation; nil: none for the WGAN-GP critic, BatchNorm otherwise.
    public var discriminatorNorm: DiscriminatorNorm?
    public var minibatchStd = false
    public var generator: GeneratorKind = .transposed
    public var step = StepOptions()
    /// The preset applied (recorded in config.json; its values are in the fields).
    public var preset: TrainPreset?
    /// `auto`, `off`, `ada`, `ada:POLICY` or a fixed POLICY (`color,translation,cutout`), resolved
    /// against the dataset by `TrainingRun`; nil: `step` is used as it is.
    public var augment: String?
    /// Decay per step of the generator's exponential moving average used for samples (nil: none,
    /// unless `emaKimg` is set); it stands for a half-life of batch·ln ½ / ln decay images.
    public var ema: Float?
    /// The average's half-life in thousands of images (StyleGAN2-ADA's ema_kimg), instead of `ema`.
    public var emaKimg: Double?
    /// Ramp-up: the half-life is at most this fraction of the images seen so far, so the average
    /// follows an early generator closely instead of staying near its initialisation (0: off).
    public var emaRampup = 0.05
    public var checkpointEvery = 1
    /// Sample grids every this many iterations as well as at each epoch's end (nil: epochs only).
    public var sampleEvery: Int?
    public var logEvery = 50
    /// Measure the sampling generator every this many kimg (fd, precision, recall, ndb in
    /// metrics.jsonl) and keep checkpoints/best.safetensors at the lowest fd. nil: a tenth of the
    /// run, but no more often than `evaluationCostKimg` allows; 0: never.
    public var evalEvery: Double?
    /// Real and synthetic images per evaluation during training.
    public var evalCount = 1000
    public var resume = false
    /// A `path,label` CSV labelling any subset of the images: the run is class-conditional.
    public var labels: String?
    /// With `labels`: labelled images added to every real batch (nil: a quarter of the batch
    /// while under half the images are labelled, else 0).
    public var labelledBatch: Int?
    /// With `labels`: a labeller (`label --save-labeller`) that draws, each time an unlabelled image
    /// is shown, its class from its probabilities (see `DrawnLabels`).
    public var labeller: String?
    /// With `labels`: a projection discriminator (see `DCGANConfiguration.projection`).
    public var projection = false
    /// With `labels`: class-conditional BatchNorm in G (see `DCGANConfiguration.classNorm`).
    public var classNorm = false
    /// With `step.pseudoLabels`: how often D's classifier is measured on the held-out labelled
    /// images, and the accuracy there from which pseudo-labels are used ("good enough").
    public var pseudoLabelCheck = 200
    public var pseudoLabelAccuracy = 0.8

    public init(data: String, out: String) {
        self.data = data
        self.out = out
    }

    enum CodingKeys: String, CodingKey {
        case data, out, epochs, kimg, batch, seed, nz, ngf, ndf, dropout, noise, step, augment, ema, resume, generator, preset
        case discriminatorNorm = "d_norm", minibatchStd = "minibatch_std"
        case snapshotKimg = "snapshot_kimg", emaKimg = "ema_kimg", emaRampup = "ema_rampup"
        case checkpointEvery = "checkpoint_every", sampleEvery = "sample_every", logEvery = "log_every"
        case evalEvery = "eval_every", evalCount = "eval_count", labels, labelledBatch = "labelled_batch", labeller, projection, classNorm = "class_norm"
        case pseudoLabelCheck = "pseudo_label_check", pseudoLabelAccuracy = "pseudo_label_accuracy"
    }

    public var resolvedDiscriminatorNorm: DiscriminatorNorm { discriminatorNorm ?? (step.loss == .wganGP ? .none : .batch) }

    /// The average's half-life in images, if one is kept.
    var emaHalfLifeImages: Double? {
        if let emaKimg { return emaKimg * 1000 }
        guard let ema, ema > 0 else { return ema == nil ? nil : 0 }
        return Double(batch) * log(0.5) / log(Double(ema))
    }

    /// Datasets up to this many images get adaptive augmentation under `--augment auto`: below
    /// it D overfits within a normal run (README, "Small folders").
    public static let adaptiveAugmentationLimit = 20_000

    /// The step options with `augment` applied for a dataset of `count` images.
    public func resolvedStep(datasetCount count: Int) throws -> StepOptions {
        guard let augment else { return step }
        var resolved = step
        var choice = augment
        if choice == "auto" { choice = count <= TrainOptions.adaptiveAugmentationLimit ? "ada" : "off" }
        if choice == "off" {
            resolved.diffAugment = DiffAugmentPolicy()
            resolved.adaTarget = nil
        } else if choice == "ada" || choice.hasPrefix("ada:") {
            let policy = choice == "ada" ? "color,translation,cutout" : String(choice.dropFirst(4))
            guard let parsed = DiffAugmentPolicy(policy), !parsed.isEmpty else { throw TrainingError.badAugment(augment) }
            resolved.diffAugment = parsed
            resolved.adaTarget = 0.6
        } else {
            guard let parsed = DiffAugmentPolicy(choice), !parsed.isEmpty else { throw TrainingError.badAugment(augment) }
            resolved.diffAugment = parsed
            resolved.adaTarget = nil
        }
        return resolved
    }
}

/// One line of RUN/metrics.jsonl.
public struct MetricsLine: Codable, Equatable, Sendable {
    public var epoch: Int
    public var iteration: Int
    public var lossD: Float
    public var lossG: Float
    public var dReal: Float
    public var dFake: Float
    public var imagesPerSecond: Double
    public var elapsedSeconds: Double
    /// Thousands of real images shown so far.
    public var kimg: Double?
    /// The augmentation probability (adaptive or 1), and the overfitting heuristic r_t it follows.
    public var augmentP: Float?
    public var adaOverfitting: Float?
    /// The gradient penalties' value at the last step that computed them (lazy R1 skips steps).
    public var penalty: Float?
    /// A conditional model's auxiliary classification loss in D's step (in loss_d).
    public var classLoss: Float?
    /// Unlabelled real images of the batch given a pseudo-label, and (every
    /// `pseudo_label_check` iterations) D's classifier's accuracy on the held-out labelled images.
    public var pseudoLabelled: Int?
    public var heldOutClassAccuracy: Double?
    /// On evaluation lines (`eval_every`): the sampling generator's figures, and the time they took.
    public var fd: Double?
    public var precision: Double?
    public var recall: Double?
    public var ndb: Int?
    public var evalSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, iteration, lossD = "loss_d", lossG = "loss_g", dReal = "d_real", dFake = "d_fake"
        case imagesPerSecond = "img_per_s", elapsedSeconds = "elapsed_s", kimg, augmentP = "augment_p", adaOverfitting = "ada_r_t", penalty
        case classLoss = "class_loss", pseudoLabelled = "pseudo_labelled", heldOutClassAccuracy = "held_out_class_accuracy", fd, precision, recall, ndb, evalSeconds = "eval_s"
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(iteration: Int, epoch: Int, lossD: Float, lossG: Float, lastCheckpoint: String?)
    case runExists(path: String)
    case unsupportedSize(size: Int)
    case tooFewImages(path: String, count: Int, batch: Int)
    case badAugment(String)
    case conditionalReplay
    case labellerOptions(String)

    public var description: String {
        switch self {
        case .nonFinite(let iteration, let epoch, let lossD, let lossG, let checkpoint):
            return "training diverged at iteration \(iteration) (epoch \(epoch + 1)): loss_d \(lossD), loss_g \(lossG); "
                + (checkpoint.map { "the last good checkpoint is \($0)" } ?? "no checkpoint was written yet")
        case .runExists(let path): return "\(path) already holds a training run; pass --resume to continue it, or choose another --out"
        case .unsupportedSize(let size): return "DCGAN supports 32, 64 and 128-pixel images; the dataset is \(size) px (prepare it with --size 32, 64 or 128)"
        case .tooFewImages(let path, let count, let batch): return "\(path): \(count) images are fewer than one batch of \(batch); pass a smaller --batch"
        case .badAugment(let text): return "--augment \(text): expected auto, off, ada, ada:POLICY or POLICY (any of color,translation,cutout)"
        case .conditionalReplay: return "--replay cannot be combined with --labels: replayed fakes carry no class"
        case .labellerOptions(let reason): return reason
        }
    }
}

/// How a run ended, for the caller.
public enum TrainingOutcome: Sendable { case finished, stopped }

/// Trains a DCGAN on a prepared dataset into a run folder:
/// config.json, metrics.jsonl, samples/real.png, samples/epoch-NNN.png (or kimg-NNNN.N.png),
/// checkpoints/epoch-NNN.safetensors (or kimg-NNNN.N), checkpoints/latest.safetensors, summary.json,
/// and with `options.labeller` a copy of it, labeller.safetensors.
public final class TrainingRun {
    public let options: TrainOptions
    public let loader: BatchLoader
    public let trainer: DCGANTrainer
    /// The generator's moving average (when `ema` or `emaKimg` is set), used for samples.
    public let averageGenerator: Generator?
    /// Whether the average has moved since its BatchNorm statistics were last recomputed.
    private var averageStatisticsStale = true
    let run: URL

    public var checkpointsDirectory: URL { run.appendingPathComponent("checkpoints") }
    public var latestCheckpoint: URL { checkpointsDirectory.appendingPathComponent("latest.safetensors") }
    public var bestCheckpoint: URL { checkpointsDirectory.appendingPathComponent("best.safetensors") }
    /// With `options.labels`: each dataset row's class index, −1 where unlabelled.
    public let rowClasses: [Int]?
    /// With `options.labels`: the labelled images shown beside each batch (nil when none are).
    let labelledImages: LabelledImages?
    /// With pseudo-labels: a tenth of the labelled images (at most 1,000), never trained on, on
    /// which D's classifier is measured every `options.pseudoLabelCheck` iterations; pseudo-labels
    /// are used while its accuracy there is at least `options.pseudoLabelAccuracy`.
    let heldOutLabelled: LabelledImages?
    /// With `options.labeller`: the unlabelled images' class probabilities, drawn from per batch.
    let drawnLabels: DrawnLabels?
    /// The real side of the evaluations during training, made at the first one.
    private var evaluationReference: RealReference?

    public init(options: TrainOptions) throws {
        self.options = options
        run = URL(fileURLWithPath: options.out)
        loader = try BatchLoader(directory: options.data, batchSize: options.batch, seed: options.seed)
        let manifest = loader.manifest
        guard DCGANConfiguration.supportedSizes[manifest.size] != nil else { throw TrainingError.unsupportedSize(size: manifest.size) }
        guard loader.batchesPerEpoch > 0 else { throw TrainingError.tooFewImages(path: options.data, count: manifest.count, batch: options.batch) }
        var configuration = DCGANConfiguration(imageSize: manifest.size, channels: manifest.channels, nz: options.nz,
                                               ngf: options.ngf, ndf: options.ndf, dropout: options.dropout, latent: options.noise,
                                               discriminatorNorm: options.resolvedDiscriminatorNorm, minibatchStd: options.minibatchStd,
                                               generatorKind: options.generator)
        if let labels = options.labels {
            guard options.step.replay == 0 else { throw TrainingError.conditionalReplay }
            var (rowClasses, classes) = try LabelFile(path: labels).datasetLabels(options.data)
            configuration.classes = classes
            configuration.projection = options.projection
            configuration.classNorm = options.classNorm
            if options.step.pseudoLabels > 0 {
                let labelledRows = rowClasses.indices.filter { rowClasses[$0] >= 0 }
                var random = SeededRandom(seed: options.seed &+ 0x5E1D)
                let heldRows = random.permutation(labelledRows.count).prefix(min(1000, max(1, labelledRows.count / 10))).map { labelledRows[$0] }
                var heldClasses = [Int](repeating: -1, count: rowClasses.count)
                for row in heldRows {
                    heldClasses[row] = rowClasses[row]
                    rowClasses[row] = -1
                }
                heldOutLabelled = try LabelledImages(dataset: options.data, rowClasses: heldClasses, perBatch: 0, seed: options.seed)
            } else {
                heldOutLabelled = nil
            }
            self.rowClasses = rowClasses
            if let labeller = options.labeller {
                guard options.step.pseudoLabels == 0 else {
                    throw TrainingError.labellerOptions("--labeller and --pseudo-labels both label the unlabelled images; give one")
                }
                guard rowClasses.contains(-1) else {
                    throw TrainingError.labellerOptions("\(labels) labels every image, so --labeller has none to draw a class for; give the few labels themselves")
                }
                let scorer = try LabellerScorer(labellers: [Labeller(path: labeller)], for: configuration)
                drawnLabels = try DrawnLabels(scorer: scorer, dataset: options.data, rowClasses: rowClasses, classCount: classes.count, seed: options.seed)
            } else {
                drawnLabels = nil
            }
            // With a labeller every image has a class: the loader's batches carry enough labels.
            let labelled = drawnLabels == nil ? rowClasses.filter { $0 >= 0 }.count : manifest.count
            let perBatch = options.labelledBatch ?? LabelledImages.defaultPerBatch(batch: options.batch, labelled: labelled, total: manifest.count,
                                                                                    sampleLength: loader.sampleLength)
            labelledImages = perBatch > 0 ? try LabelledImages(dataset: options.data, rowClasses: rowClasses, perBatch: perBatch, seed: options.seed) : nil
        } else {
            guard options.labeller == nil else { throw TrainingError.labellerOptions("--labeller comes with --labels") }
            rowClasses = nil
            labelledImages = nil
            heldOutLabelled = nil
            drawnLabels = nil
        }
        trainer = DCGANTrainer(configuration: configuration, options: try options.resolvedStep(datasetCount: manifest.count), seed: options.seed)
        if options.emaHalfLifeImages != nil {
            let average = DCGAN.generator(configuration, backend: trainer.options.backend)
            average.setPrecision(trainer.options.precision)
            for (target, source) in zip(average.parameters, trainer.generator.parameters) { target.value.copy(from: source.value) }
            averageGenerator = average
        } else {
            averageGenerator = nil
        }
    }

    /// The generator used for samples: the moving average if kept, else the trained one.
    public var samplingGenerator: Generator { averageGenerator ?? trainer.generator }

    /// Iterations in the whole run, when it is measured in kimg.
    public var totalIterations: Int? { options.kimg.map { Int(($0 * 1000 / Double(options.batch)).rounded(.up)) } }

    /// Iterations between snapshots in a kimg run.
    var snapshotIterations: Int? {
        guard let kimg = options.kimg else { return nil }
        let every = options.snapshotKimg ?? kimg / 10
        return max(1, Int((every * 1000 / Double(options.batch)).rounded()))
    }

    /// What evaluations during training measure.
    var evaluationOptions: EvaluationOptions {
        var evaluation = EvaluationOptions()
        evaluation.count = min(options.evalCount, loader.manifest.count)
        evaluation.twoSample = false
        return evaluation
    }

    /// One evaluation of 1000 images (generate, features, neighbours, bins) costs about what
    /// training on 0.4 kimg does, at 32 px gray and 64 px RGB alike (0.43 s vs 1.1 s/kimg;
    /// 2.5 s vs 6.4 s/kimg on the two cores here).
    static let evaluationCostKimg = 0.4

    /// The default spacing keeps evaluation at or under 5% of training time.
    static func defaultEvaluationSpacing(evalCount: Int) -> Double {
        evaluationCostKimg * Double(evalCount) / 1000 / 0.05
    }

    /// Figures from fewer real images say little (and tiny test runs stay fast).
    static let minimumEvaluationImages = 100

    /// Iterations between evaluations (nil: none, or too few images to measure).
    var evaluationIterations: Int? {
        guard loader.manifest.count >= max(RealReference.minimumImages(evaluationOptions), TrainingRun.minimumEvaluationImages) else { return nil }
        let total = options.kimg ?? Double(options.epochs * loader.manifest.count) / 1000
        let every = options.evalEvery ?? max(total / 10, TrainingRun.defaultEvaluationSpacing(evalCount: evaluationOptions.count))
        guard every > 0 else { return nil }
        return max(1, Int((every * 1000 / Double(options.batch)).rounded()))
    }

    func isDone(_ progress: TrainingProgress) -> Bool {
        totalIterations.map { progress.iteration >= $0 } ?? (progress.epoch >= options.epochs)
    }

    /// Iterations the run will take.
    var plannedIterations: Int { totalIterations ?? options.epochs * loader.batchesPerEpoch }

    /// Instance noise falls linearly from its starting σ to 0 at the end of the run.
    func instanceNoiseLevel(_ progress: TrainingProgress) -> Float {
        let start = trainer.options.instanceNoise
        guard start > 0 else { return 0 }
        return start * Float(max(0, 1 - Double(progress.iteration) / Double(max(plannedIterations, 1))))
    }

    func kimg(_ progress: TrainingProgress) -> Double { Double(progress.iteration * options.batch) / 1000 }

    /// Runs to the end (last epoch, or `kimg`) or until `stopRequested` returns true (then a
    /// checkpoint is written). `report` hears each logged line and each step's progress.
    public func train(report: (MetricsLine, _ isLogLine: Bool) -> Void = { _, _ in },
                      note: (String) -> Void = { _ in },
                      stopRequested: () -> Bool = { false }) throws -> TrainingOutcome {
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: checkpointsDirectory, withIntermediateDirectories: true)
        try fileManager.createDirectory(at: run.appendingPathComponent("samples"), withIntermediateDirectories: true)
        let metricsURL = run.appendingPathComponent("metrics.jsonl")

        var progress = TrainingProgress(epoch: 0, batchInEpoch: 0, iteration: 0)
        if fileManager.fileExists(atPath: latestCheckpoint.path) {
            guard options.resume else { throw TrainingError.runExists(path: run.path) }
            progress = try Checkpoint.restore(trainer, ema: averageGenerator, from: latestCheckpoint.path)
            try truncateMetrics(metricsURL, after: progress.iteration)
            note("resuming from \(latestCheckpoint.path): epoch \(progress.epoch + 1), iteration \(progress.iteration)")
        } else {
            // A run killed before its first checkpoint may have logged lines: they start over too.
            try truncateMetrics(metricsURL, after: 0)
            if options.resume { note("no checkpoint in \(checkpointsDirectory.path); starting from scratch") }
        }
        try writeConfig()
        if let labeller = options.labeller { try keepLabeller(labeller) }

        var fixedRandom = SeededRandom(seed: options.seed &+ 0xF1C5)
        // A conditional model's grid has a row of 8 per class.
        let classCount = trainer.configuration.classes.count
        let fixedNoise = classCount > 0
            ? trainer.sampleNoise(batch: 8 * classCount, classes: (0..<8 * classCount).map { $0 / 8 }, random: &fixedRandom)
            : trainer.sampleNoise(batch: 64, random: &fixedRandom)
        var lastPenalty: Float?
        let metrics = try MetricsFile(url: metricsURL)
        let started = Date()
        var windowStart = Date(), windowImages = 0
        let real = Tensor(shape: [1])  // refilled with each batch: no allocation per step
        var lastCheckpoint: String? = fileManager.fileExists(atPath: latestCheckpoint.path) ? latestCheckpoint.path : nil
        // The best fd so far survives a resume in the metrics lines kept up to the checkpoint.
        var bestFD = (try? String(contentsOf: metricsURL, encoding: .utf8))?.split(separator: "\n")
            .compactMap { try? JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)).fd }.min() ?? .infinity

        let evaluationEvery = evaluationIterations  // fixed for the run: computed once, not per step
        while !isDone(progress) {
            let batches = loader.epoch(progress.epoch, startingAt: progress.batchInEpoch)
            var epochEnded = true
            while let batch = try batches.nextBatch() {
                if progress.iteration == 0 && progress.batchInEpoch == 0 { try writeGrid(batch, name: "real.png") }
                var classes = rowClasses.map { classes in batch.rows.map { classes.indices.contains($0) ? classes[$0] : -1 } }
                if let drawnLabels, let given = classes { classes = drawnLabels.drawing(given, rows: batch.rows, iteration: progress.iteration) }
                if let labelledImages {
                    let extra = labelledImages.batch(iteration: progress.iteration)
                    real.assign(shape: [batch.count + extra.classes.count, loader.manifest.channels, loader.manifest.size, loader.manifest.size],
                                values: batch.images + extra.images)
                    classes! += extra.classes
                } else {
                    real.assign(shape: [batch.count, loader.manifest.channels, loader.manifest.size, loader.manifest.size], values: batch.images)
                }
                trainer.instanceNoiseLevel = instanceNoiseLevel(progress)
                let step = trainer.step(real: real, classes: classes, updateGenerator: (progress.iteration + 1) % trainer.options.discriminatorSteps == 0)
                guard step.lossD.isFinite && step.lossG.isFinite else {
                    batches.cancel()
                    throw TrainingError.nonFinite(iteration: progress.iteration + 1, epoch: progress.epoch, lossD: step.lossD,
                                                  lossG: step.lossG, lastCheckpoint: lastCheckpoint)
                }
                updateAverage(imagesBefore: Double(progress.iteration * options.batch))
                progress.iteration += 1
                progress.batchInEpoch += 1
                windowImages += batch.count
                let now = Date()
                var line = MetricsLine(epoch: progress.epoch + 1, iteration: progress.iteration, lossD: step.lossD, lossG: step.lossG,
                                       dReal: step.dReal, dFake: step.dFake,
                                       imagesPerSecond: Double(windowImages) / max(now.timeIntervalSince(windowStart), 1e-9),
                                       elapsedSeconds: now.timeIntervalSince(started))
                line.kimg = kimg(progress)
                lastPenalty = step.penalty ?? lastPenalty
                line.penalty = lastPenalty
                line.classLoss = step.classLoss
                line.pseudoLabelled = step.pseudoLabelled
                if let heldOutLabelled, progress.iteration % options.pseudoLabelCheck == 0 {
                    let size = loader.manifest.size
                    let accuracy = trainer.classifierAccuracy(images: Tensor(shape: [heldOutLabelled.count, loader.manifest.channels, size, size],
                                                                             values: heldOutLabelled.images), classes: heldOutLabelled.classes)
                    trainer.pseudoLabelsActive = accuracy >= options.pseudoLabelAccuracy
                    line.heldOutClassAccuracy = accuracy
                }
                if !trainer.options.diffAugment.isEmpty { line.augmentP = trainer.augmentProbability }
                line.adaOverfitting = trainer.adaptive?.lastOverfitting
                let evaluates = evaluationEvery.map { progress.iteration % $0 == 0 || isDone(progress) } ?? false
                if evaluates {
                    let figures = try evaluate(progress)
                    line.fd = figures.fd.isFinite ? figures.fd : nil
                    line.precision = figures.precision
                    line.recall = figures.recall
                    line.ndb = figures.ndb
                    line.evalSeconds = figures.seconds
                    if figures.fd < bestFD {
                        bestFD = figures.fd
                        try saveCheckpoint(progress, to: bestCheckpoint.path)
                    }
                }
                let isLogLine = evaluates || progress.iteration % options.logEvery == 0 || progress.batchInEpoch == loader.batchesPerEpoch || isDone(progress)
                if isLogLine {
                    try metrics.append(line)
                    windowStart = now
                    windowImages = 0
                }
                report(line, isLogLine)
                if let every = options.sampleEvery, progress.iteration % every == 0 {
                    try writeSamples(fixedNoise, name: String(format: "iteration-%06d.png", progress.iteration))
                }
                if let every = snapshotIterations, progress.iteration % every == 0 || isDone(progress) {
                    let name = String(format: "kimg-%06.1f", kimg(progress))
                    try writeSamples(fixedNoise, name: name + ".png")
                    try saveCheckpoint(progress, named: name + ".safetensors")
                    lastCheckpoint = latestCheckpoint.path
                }
                if isDone(progress) {
                    batches.cancel()
                    epochEnded = false
                    break
                }
                if stopRequested() {
                    batches.cancel()
                    try saveCheckpoint(progress, named: nil)
                    note("stopped at iteration \(progress.iteration); checkpoint written to \(latestCheckpoint.path)")
                    return .stopped
                }
            }
            guard epochEnded else { break }
            progress.epoch += 1
            progress.batchInEpoch = 0
            if options.kimg == nil {
                try writeSamples(fixedNoise, name: String(format: "epoch-%03d.png", progress.epoch))
                let numbered = progress.epoch % options.checkpointEvery == 0 || progress.epoch == options.epochs
                try saveCheckpoint(progress, named: numbered ? String(format: "epoch-%03d.safetensors", progress.epoch) : nil)
                lastCheckpoint = latestCheckpoint.path
            }
        }
        return .finished
    }

    /// After each step: average ← β·average + (1 − β)·G, with β = ½^(batch / half-life) and the
    /// half-life ramped up as StyleGAN2-ADA does: at most `emaRampup` × the images seen so far.
    private func updateAverage(imagesBefore: Double) {
        guard let averageGenerator, var halfLife = options.emaHalfLifeImages else { return }
        if options.emaRampup > 0 { halfLife = min(halfLife, imagesBefore * options.emaRampup) }
        let beta = Float(pow(0.5, Double(options.batch) / max(halfLife, 1e-8)))
        for (average, current) in zip(averageGenerator.parameters, trainer.generator.parameters) {
            let a = average.value.data, c = current.value.data
            for i in 0..<average.value.count { a[i] = beta * a[i] + (1 - beta) * c[i] }
            average.value.markModified()
        }
        averageStatisticsStale = true
    }

    /// The trained generator's BatchNorm statistics do not fit the averaged weights: recompute the
    /// average's from scratch as the mean over a few batches of fixed noise, as
    /// `torch.optim.swa_utils.update_bn` does (cumulative average: momentum 1/k on the k-th batch).
    private func refreshAverageStatistics() {
        guard let averageGenerator, averageStatisticsStale else { return }
        let norms = averageGenerator.layers.compactMap { $0 as? BatchNorm2d }
        for norm in norms {
            norm.runningMean.fill(0)
            norm.runningVariance.fill(1)
        }
        var random = SeededRandom(seed: options.seed &+ 0xB4)
        for k in 0..<TrainingRun.statisticsBatches {
            for norm in norms { norm.momentum = 1 / Float(k + 1) }
            _ = averageGenerator.forward(trainer.sampleNoise(batch: options.batch, random: &random))
        }
        let tracked = trainer.generator.layers.compactMap { $0 as? BatchNorm2d }.first?.batchesTracked ?? 0
        for norm in norms {
            norm.momentum = 0.1
            norm.batchesTracked = tracked
        }
        averageStatisticsStale = false
    }

    static let statisticsBatches = 8

    /// The sampling generator's figures against `evalCount` dataset images (no two-sample test:
    /// it would cost more than the rest together). The same latents every time.
    private func evaluate(_ progress: TrainingProgress) throws -> (fd: Double, precision: Double, recall: Double, ndb: Int, seconds: Double) {
        let started = Date()
        if evaluationReference == nil { evaluationReference = try RealReference(dataset: options.data, options: evaluationOptions) }
        let reference = evaluationReference!
        refreshAverageStatistics()
        let generator = samplingGenerator
        generator.isTraining = false
        defer { generator.isTraining = true }
        var random = SeededRandom(seed: options.seed &+ 0xE7A1)
        var synthetic: [Float] = []
        for start in stride(from: 0, to: reference.count, by: 250) {
            synthetic += generator.forward(trainer.sampleNoise(batch: min(250, reference.count - start), random: &random)).values
        }
        let figures = SampleEvaluation.measure(synthetic, against: reference).figures
        return (figures.fd, figures.precision, figures.recall, figures.ndb, Date().timeIntervalSince(started))
    }

    /// Fixed-noise samples, generator in evaluation mode (BatchNorm running statistics).
    func writeSamples(_ noise: Tensor, name: String) throws {
        refreshAverageStatistics()
        let generator = samplingGenerator
        generator.isTraining = false
        defer { generator.isTraining = true }
        let images = generator.forward(noise)
        try AtomicFile.write(try PNG.encode(SampleGrid.image(images)), to: run.appendingPathComponent("samples/\(name)").path)
    }

    private func writeGrid(_ batch: Batch, name: String) throws {
        let count = min(batch.count, 64)
        let size = loader.manifest.size, channels = loader.manifest.channels
        let images = Tensor(shape: [count, channels, size, size], values: Array(batch.images.prefix(count * channels * size * size)))
        try AtomicFile.write(try PNG.encode(SampleGrid.image(images)), to: run.appendingPathComponent("samples/\(name)").path)
    }

    private func saveCheckpoint(_ progress: TrainingProgress, named name: String?) throws {
        if let name {
            let path = checkpointsDirectory.appendingPathComponent(name).path
            try saveCheckpoint(progress, to: path)
            // latest: the same bytes under a second name, also replaced atomically.
            try AtomicFile.write(Array(try Data(contentsOf: URL(fileURLWithPath: path))), to: latestCheckpoint.path)
        } else {
            try saveCheckpoint(progress, to: latestCheckpoint.path)
        }
    }

    private func saveCheckpoint(_ progress: TrainingProgress, to path: String) throws {
        // Never replace a good checkpoint with weights that went bad before any loss showed it.
        let parameters = trainer.generator.parameters + trainer.discriminator.parameters
        guard parameters.allSatisfy({ $0.value.buffer.allSatisfy(\.isFinite) }) else {
            throw TrainingError.nonFinite(iteration: progress.iteration, epoch: progress.epoch, lossD: .nan, lossG: .nan,
                                          lastCheckpoint: FileManager.default.fileExists(atPath: latestCheckpoint.path) ? latestCheckpoint.path : nil)
        }
        refreshAverageStatistics()
        let extra = ["dataset": options.data, "seed": String(options.seed)]
        try Checkpoint.save(trainer, progress: progress, ema: averageGenerator, extra: extra, to: path)
    }

    /// Measures the sampling generator against the dataset (memorisation and diversity) and writes
    /// RUN/summary.json.
    public func writeSummary() throws -> TrainingSummary {
        refreshAverageStatistics()
        let check = try TrainingSummary.measure(generator: samplingGenerator, configuration: trainer.configuration,
                                                dataset: options.data, seed: options.seed)
        let lines = (try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8))?.split(separator: "\n") ?? []
        let last = lines.last.flatMap { try? JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        let summary = TrainingSummary(epochs: options.kimg == nil ? options.epochs : (last?.epoch ?? 0), kimg: last?.kimg,
                                      iterations: last?.iteration ?? 0, lastMetrics: last,
                                      memorisation: check.memorisation, diversity: check.diversity)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(summary)), to: run.appendingPathComponent("summary.json").path)
        return summary
    }

    /// The labeller's file in the run: generate and utility find it there wherever the run moves.
    public static let labellerFileName = "labeller.safetensors"

    private func keepLabeller(_ path: String) throws {
        let copy = run.appendingPathComponent(TrainingRun.labellerFileName)
        guard URL(fileURLWithPath: path).standardizedFileURL != copy.standardizedFileURL else { return }
        try AtomicFile.write(Array(try Data(contentsOf: URL(fileURLWithPath: path))), to: copy.path)
    }

    private func writeConfig() throws {
        struct Config: Encodable {
            var options: TrainOptions
            var model: DCGANConfiguration
            var datasetFingerprint: String
            var datasetCount: Int
            var darkroomVersion: String
            var onednnVersion: String
            enum CodingKeys: String, CodingKey {
                case options, model, datasetFingerprint = "dataset_fingerprint", datasetCount = "dataset_count"
                case darkroomVersion = "darkroom_version", onednnVersion = "onednn_version"
            }
        }
        let manifestBytes = (try? Data(contentsOf: URL(fileURLWithPath: options.data).appendingPathComponent(DatasetManifest.fileName))) ?? Data()
        let config = Config(options: options, model: trainer.configuration, datasetFingerprint: Fingerprint.hex(Array(manifestBytes)),
                            datasetCount: loader.manifest.count, darkroomVersion: darkroomVersion, onednnVersion: oneDNNVersion)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(config)), to: run.appendingPathComponent("config.json").path)
    }

    private func truncateMetrics(_ url: URL, after iteration: Int) throws {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        let kept = text.split(separator: "\n").filter { line in
            guard let decoded = try? JSONDecoder().decode(MetricsLine.self, from: Data(line.utf8)) else { return false }
            return decoded.iteration <= iteration
        }
        try AtomicFile.write(Array((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8), to: url.path)
    }
}

/// Appends JSON lines, flushed per line.
final class MetricsFile {
    private let handle: FileHandle
    private let encoder = JSONEncoder()

    init(url: URL) throws {
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        encoder.outputFormatting = [.sortedKeys]
    }

    deinit { try? handle.close() }

    func append(_ line: MetricsLine) throws {
        try handle.write(contentsOf: try encoder.encode(line) + Data("\n".utf8))
    }
}
