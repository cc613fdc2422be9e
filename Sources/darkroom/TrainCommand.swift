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
    @Option var epochs = 25
    @Option var batch = 64
    @Option var nz = 100
    @Option var ngf = 64
    @Option var ndf = 64
    @Option var lr: Float = 2e-4
    @Option var beta1: Float = 0.5
    @Option var seed: UInt64 = 1
    @Flag(help: "Continue from RUN/checkpoints/latest.safetensors.")
    var resume = false
    @Option(help: "bce (non-saturating) or hinge.")
    var loss = "bce"
    @Option(help: "One-sided label smoothing: D's target for real images (e.g. 0.9).")
    var realLabel: Float = 1
    @Option(help: "DiffAugment policies for every image D sees: any of color,translation,cutout.")
    var diffaugment: String?
    @Option(help: "Dropout probability in the discriminator blocks.")
    var dropout: Float = 0
    @Option(help: "Keep an exponential moving average of G with this decay (e.g. 0.999) for samples.")
    var ema: Float?
    @Option(help: "Write a numbered checkpoint every this many epochs (latest is always kept).")
    var checkpointEvery = 1
    @Option(help: "Also write a sample grid every this many iterations.")
    var sampleEvery: Int?
    @Option(help: "A metrics line every this many iterations (and at each epoch's end).")
    var logEvery = 50
    @Option(help: "fast (oneDNN) or reference (plain Swift, slow).")
    var backend = "fast"

    func validate() throws {
        guard epochs >= 1, batch >= 1, nz >= 1, ngf >= 1, ndf >= 1 else { throw ValidationError("--epochs, --batch, --nz, --ngf and --ndf must be positive") }
        guard GANLoss(rawValue: loss) != nil else { throw ValidationError("--loss must be bce or hinge") }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1)") }
        if let ema, !(0..<1).contains(ema) { throw ValidationError("--ema must be in [0, 1)") }
        guard lr > 0, (0..<1).contains(beta1), (0...1).contains(realLabel) else { throw ValidationError("--lr must be positive, --beta1 in [0, 1), --real-label in [0, 1]") }
        guard checkpointEvery >= 1, logEvery >= 1, sampleEvery.map({ $0 >= 1 }) ?? true else { throw ValidationError("--checkpoint-every, --log-every and --sample-every must be at least 1") }
        guard Backend(rawValue: backend) != nil else { throw ValidationError("--backend must be fast or reference") }
        if let diffaugment, DiffAugmentPolicy(diffaugment) == nil { throw ValidationError("--diffaugment takes color, translation and/or cutout, comma-separated") }
    }

    func run() throws {
        var options = TrainOptions(data: data, out: out)
        options.epochs = epochs
        options.batch = batch
        options.seed = seed
        options.nz = nz
        options.ngf = ngf
        options.ndf = ndf
        options.dropout = dropout
        options.step = StepOptions(loss: GANLoss(rawValue: loss)!, learningRate: lr, beta1: beta1, realLabel: realLabel, backend: Backend(rawValue: backend)!,
                                   diffAugment: diffaugment.flatMap(DiffAugmentPolicy.init) ?? DiffAugmentPolicy())
        options.ema = ema
        options.checkpointEvery = checkpointEvery
        options.sampleEvery = sampleEvery
        options.logEvery = logEvery
        options.resume = resume

        let training = try TrainingRun(options: options)
        signal(SIGINT) { _ in interruptRequested = true }
        let perEpoch = training.loader.batchesPerEpoch
        let total = perEpoch * epochs
        let outcome = try training.train(report: { line, isLogLine in
            let done = line.iteration
            let remaining = Double(total - done) * Double(batch) / max(line.imagesPerSecond, 1e-9)
            let text = String(format: "epoch %d/%d  iter %d/%d  %.0f img/s  ETA %@  loss_d %.3f  loss_g %.3f  D(x) %.2f  D(G(z)) %.2f",
                              line.epoch, epochs, done, total, line.imagesPerSecond, formatDuration(remaining),
                              line.lossD, line.lossG, line.dReal, line.dFake)
            if Console.isTerminal { Console.progress(text) } else if isLogLine { Console.note(text) }
        }, note: { Console.endProgress(); Console.note($0) }, stopRequested: { interruptRequested })
        Console.endProgress()
        guard outcome == .finished else { throw ExitCode(130) }

        let memorisation = try TrainingSummary.measure(generator: training.samplingGenerator, configuration: training.trainer.configuration,
                                                       dataset: data, seed: seed)
        let lines = (try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        let last = lines.last.flatMap { try? JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        let summary = TrainingSummary(epochs: epochs, iterations: last?.iteration ?? 0, lastMetrics: last, memorisation: memorisation)
        try Data(try Console.json(summary).utf8).write(to: URL(fileURLWithPath: out + "/summary.json"), options: .atomic)
        Console.note(String(format: "trained %d epochs; samples in %@/samples, checkpoints in %@/checkpoints; nearest-neighbour distance of samples %.3f vs %.3f between real images (ratio %.2f)",
                            epochs, out, out, memorisation.sampleDistanceMedian, memorisation.realDistanceMedian, memorisation.medianRatio))
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60) : String(format: "%d:%02d", total / 60, total % 60)
}
