import Dataset
import Foundation
import Formats
import Imaging
import NN

/// The `train` options. Written to RUN/config.json.
public struct TrainOptions: Codable, Sendable {
    public var data: String
    public var out: String
    public var epochs = 25
    public var batch = 64
    public var seed: UInt64 = 1
    public var nz = 100
    public var ngf = 64
    public var ndf = 64
    public var dropout: Float = 0
    public var step = StepOptions()
    /// Decay of the generator's exponential moving average used for samples (nil: none).
    public var ema: Float?
    public var checkpointEvery = 1
    /// Sample grids every this many iterations as well as at each epoch's end (nil: epochs only).
    public var sampleEvery: Int?
    public var logEvery = 50
    public var resume = false

    public init(data: String, out: String) {
        self.data = data
        self.out = out
    }

    enum CodingKeys: String, CodingKey {
        case data, out, epochs, batch, seed, nz, ngf, ndf, dropout, step, ema, resume
        case checkpointEvery = "checkpoint_every", sampleEvery = "sample_every", logEvery = "log_every"
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

    enum CodingKeys: String, CodingKey {
        case epoch, iteration, lossD = "loss_d", lossG = "loss_g", dReal = "d_real", dFake = "d_fake"
        case imagesPerSecond = "img_per_s", elapsedSeconds = "elapsed_s"
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(iteration: Int, epoch: Int, lossD: Float, lossG: Float, lastCheckpoint: String?)
    case runExists(path: String)
    case unsupportedSize(size: Int)

    public var description: String {
        switch self {
        case .nonFinite(let iteration, let epoch, let lossD, let lossG, let checkpoint):
            return "training diverged at iteration \(iteration) (epoch \(epoch + 1)): loss_d \(lossD), loss_g \(lossG); "
                + (checkpoint.map { "the last good checkpoint is \($0)" } ?? "no checkpoint was written yet")
        case .runExists(let path): return "\(path) already holds a training run; pass --resume to continue it, or choose another --out"
        case .unsupportedSize(let size): return "DCGAN supports 32, 64 and 128-pixel images; the dataset is \(size) px (prepare it with --size 32, 64 or 128)"
        }
    }
}

/// How a run ended, for the caller.
public enum TrainingOutcome: Sendable { case finished, stopped }

/// Trains a DCGAN on a prepared dataset into a run folder:
/// config.json, metrics.jsonl, samples/real.png, samples/epoch-NNN.png,
/// checkpoints/epoch-NNN.safetensors, checkpoints/latest.safetensors, summary.json.
public final class TrainingRun {
    public let options: TrainOptions
    public let loader: BatchLoader
    public let trainer: DCGANTrainer
    /// The generator's moving average (when `ema` is set), used for samples.
    public let averageGenerator: Sequential?
    let run: URL

    public var checkpointsDirectory: URL { run.appendingPathComponent("checkpoints") }
    public var latestCheckpoint: URL { checkpointsDirectory.appendingPathComponent("latest.safetensors") }

    public init(options: TrainOptions) throws {
        self.options = options
        run = URL(fileURLWithPath: options.out)
        loader = try BatchLoader(directory: options.data, batchSize: options.batch, seed: options.seed)
        let manifest = loader.manifest
        guard DCGANConfiguration.supportedSizes[manifest.size] != nil else { throw TrainingError.unsupportedSize(size: manifest.size) }
        let configuration = DCGANConfiguration(imageSize: manifest.size, channels: manifest.channels, nz: options.nz,
                                               ngf: options.ngf, ndf: options.ndf, dropout: options.dropout)
        trainer = DCGANTrainer(configuration: configuration, options: options.step, seed: options.seed)
        if options.ema != nil {
            let average = DCGAN.generator(configuration, backend: options.step.backend)
            for (target, source) in zip(average.parameters, trainer.generator.parameters) { target.value.copy(from: source.value) }
            averageGenerator = average
        } else {
            averageGenerator = nil
        }
    }

    /// The generator used for samples: the moving average if kept, else the trained one.
    public var samplingGenerator: Sequential { averageGenerator ?? trainer.generator }

    /// Runs to the last epoch or until `stopRequested` returns true (then a checkpoint is written).
    /// `report` hears each logged line and each step's progress.
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

        var fixedRandom = SeededRandom(seed: options.seed &+ 0xF1C5)
        let fixedNoise = trainer.sampleNoise(batch: 64, random: &fixedRandom)
        let metrics = try MetricsFile(url: metricsURL)
        let started = Date()
        var windowStart = Date(), windowImages = 0
        let real = Tensor(shape: [1])  // refilled with each batch: no allocation per step
        var lastCheckpoint: String? = fileManager.fileExists(atPath: latestCheckpoint.path) ? latestCheckpoint.path : nil

        while progress.epoch < options.epochs {
            let batches = loader.epoch(progress.epoch, startingAt: progress.batchInEpoch)
            while let batch = try batches.nextBatch() {
                if progress.iteration == 0 && progress.batchInEpoch == 0 { try writeGrid(batch, name: "real.png") }
                real.assign(shape: [batch.count, loader.manifest.channels, loader.manifest.size, loader.manifest.size], values: batch.images)
                let step = trainer.step(real: real)
                guard step.lossD.isFinite && step.lossG.isFinite else {
                    batches.cancel()
                    throw TrainingError.nonFinite(iteration: progress.iteration + 1, epoch: progress.epoch, lossD: step.lossD,
                                                  lossG: step.lossG, lastCheckpoint: lastCheckpoint)
                }
                updateAverage()
                progress.iteration += 1
                progress.batchInEpoch += 1
                windowImages += batch.count
                let now = Date()
                let line = MetricsLine(epoch: progress.epoch + 1, iteration: progress.iteration, lossD: step.lossD, lossG: step.lossG,
                                       dReal: step.dReal, dFake: step.dFake,
                                       imagesPerSecond: Double(windowImages) / max(now.timeIntervalSince(windowStart), 1e-9),
                                       elapsedSeconds: now.timeIntervalSince(started))
                let isLogLine = progress.iteration % options.logEvery == 0 || progress.batchInEpoch == loader.batchesPerEpoch
                if isLogLine {
                    try metrics.append(line)
                    windowStart = now
                    windowImages = 0
                }
                report(line, isLogLine)
                if let every = options.sampleEvery, progress.iteration % every == 0 {
                    try writeSamples(fixedNoise, name: String(format: "iteration-%06d.png", progress.iteration))
                }
                if stopRequested() {
                    batches.cancel()
                    try saveCheckpoint(progress, named: nil)
                    note("stopped at iteration \(progress.iteration); checkpoint written to \(latestCheckpoint.path)")
                    return .stopped
                }
            }
            progress.epoch += 1
            progress.batchInEpoch = 0
            try writeSamples(fixedNoise, name: String(format: "epoch-%03d.png", progress.epoch))
            let numbered = progress.epoch % options.checkpointEvery == 0 || progress.epoch == options.epochs
            try saveCheckpoint(progress, named: numbered ? String(format: "epoch-%03d.safetensors", progress.epoch) : nil)
            lastCheckpoint = latestCheckpoint.path
        }
        return .finished
    }

    /// After each G step: average ← decay·average + (1 − decay)·G; BatchNorm statistics copied.
    private func updateAverage() {
        guard let averageGenerator, let decay = options.ema else { return }
        for (average, current) in zip(averageGenerator.parameters, trainer.generator.parameters) {
            let a = average.value.data, c = current.value.data
            for i in 0..<average.value.count { a[i] = decay * a[i] + (1 - decay) * c[i] }
            average.value.markModified()
        }
        for (average, current) in zip(averageGenerator.layers, trainer.generator.layers) {
            guard let averageNorm = average as? BatchNorm2d, let norm = current as? BatchNorm2d else { continue }
            averageNorm.runningMean.copy(from: norm.runningMean)
            averageNorm.runningVariance.copy(from: norm.runningVariance)
            averageNorm.batchesTracked = norm.batchesTracked
        }
    }

    /// Fixed-noise samples, generator in evaluation mode (BatchNorm running statistics).
    func writeSamples(_ noise: Tensor, name: String) throws {
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
        // Never replace a good checkpoint with weights that went bad before any loss showed it.
        let parameters = trainer.generator.parameters + trainer.discriminator.parameters
        guard parameters.allSatisfy({ $0.value.buffer.allSatisfy(\.isFinite) }) else {
            throw TrainingError.nonFinite(iteration: progress.iteration, epoch: progress.epoch, lossD: .nan, lossG: .nan,
                                          lastCheckpoint: FileManager.default.fileExists(atPath: latestCheckpoint.path) ? latestCheckpoint.path : nil)
        }
        let extra = ["dataset": options.data, "seed": String(options.seed)]
        if let name {
            let path = checkpointsDirectory.appendingPathComponent(name).path
            try Checkpoint.save(trainer, progress: progress, ema: averageGenerator, extra: extra, to: path)
            // latest: the same bytes under a second name, also replaced atomically.
            try AtomicFile.write(Array(try Data(contentsOf: URL(fileURLWithPath: path))), to: latestCheckpoint.path)
        } else {
            try Checkpoint.save(trainer, progress: progress, ema: averageGenerator, extra: extra, to: latestCheckpoint.path)
        }
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
