import Crypto
import Dataset
import Evaluation
import Foundation
import Formats
import Imaging
import NN

public enum GenerationError: Error, CustomStringConvertible {
    case outputNotEmpty(path: String)
    case noCheckpoint(path: String)
    case badLatents(path: String, reason: String)
    case noTrainingData(path: String)
    case notConditional(path: String)

    public var description: String {
        switch self {
        case .outputNotEmpty(let path): return "\(path): output folder is not empty (pass --overwrite to write into it)"
        case .noCheckpoint(let path): return "\(path): no such checkpoint (train first, or name one of RUN/checkpoints)"
        case .badLatents(let path, let reason): return "\(path): \(reason)"
        case .noTrainingData(let path): return "\(path): cannot read the run's dataset (pass --data)"
        case .notConditional(let path): return "\(path): the model is not class-conditional (train it with --labels to use --per-class)"
        }
    }
}

/// A trained generator loaded from a run's checkpoint, in evaluation mode.
public final class TrainedGenerator {
    public let configuration: DCGANConfiguration
    public let network: Generator
    /// sha256 of the checkpoint file, recorded with every generated image.
    public let checkpointDigest: String
    public let checkpointPath: String
    public let usesAverage: Bool

    /// `checkpoint`: "latest", "epoch-N", or a path. `average`: use the EMA weights when present.
    public init(run: String, checkpoint: String = "latest", average: Bool = true, backend: Backend = .fast, precision: Precision = .fp32) throws {
        let path = TrainedGenerator.resolve(run: run, checkpoint: checkpoint)
        guard FileManager.default.fileExists(atPath: path) else { throw GenerationError.noCheckpoint(path: path) }
        let (configuration, _, tensors, _) = try Checkpoint.configuration(at: path)
        self.configuration = configuration
        network = DCGAN.generator(configuration, backend: backend)
        network.setPrecision(precision)
        usesAverage = average && tensors.keys.contains { $0.hasPrefix("ema.") }
        try Checkpoint.load(tensors, into: network.network, prefix: usesAverage ? "ema." : "", path: path)
        network.isTraining = false
        checkpointPath = path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        checkpointDigest = hexString(SHA256.hash(data: bytes))
    }

    /// The labels a class-conditional run trained with (RUN/config.json's options.labels), if any.
    public static func trainingLabels(run: String) -> String? { trainingOption(run: run, "labels") }

    /// The labeller a run trained with (`train --labeller`): its copy in the run, or for a run
    /// trained before runs kept one, the path RUN/config.json records, where that still exists.
    public static func labeller(run: String) -> String? {
        let copy = run + "/" + TrainingRun.labellerFileName
        if FileManager.default.fileExists(atPath: copy) { return copy }
        return trainingOption(run: run, "labeller").flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
    }

    /// One string of RUN/config.json's options.
    private static func trainingOption(run: String, _ key: String) -> String? {
        guard let data = FileManager.default.contents(atPath: run + "/config.json"),
              let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let options = config["options"] as? [String: Any] else { return nil }
        return options[key] as? String
    }

    /// The prepared dataset a run trained on (RUN/config.json's options.data).
    public static func trainingData(run: String) throws -> String {
        guard let dataset = trainingOption(run: run, "data") else { throw GenerationError.noTrainingData(path: run + "/config.json") }
        return dataset
    }

    static func resolve(run: String, checkpoint: String) -> String {
        if checkpoint.hasSuffix(".safetensors") { return checkpoint }
        if let epoch = Int(checkpoint.replacingOccurrences(of: "epoch-", with: "")), checkpoint.hasPrefix("epoch-") {
            return "\(run)/checkpoints/" + String(format: "epoch-%03d.safetensors", epoch)
        }
        if let kimg = Double(checkpoint.replacingOccurrences(of: "kimg-", with: "")), checkpoint.hasPrefix("kimg-") {
            return "\(run)/checkpoints/" + String(format: "kimg-%06.1f.safetensors", kimg)
        }
        // best: kept by `train --eval-every`; a run that kept none (evaluation off, or too few
        // images to measure) offers its latest instead, so pipelines can always ask for best.
        if checkpoint == "best" && !FileManager.default.fileExists(atPath: "\(run)/checkpoints/best.safetensors") {
            return "\(run)/checkpoints/latest.safetensors"
        }
        return "\(run)/checkpoints/\(checkpoint).safetensors"
    }

    /// The latent of image `index` of a generation seeded with `seed`: each image has its own
    /// stream, so any one can be regenerated alone. `psi` scales it toward or away from the
    /// prior's mean, 0 (the truncation trick's ψ): below 1 typical images, above 1 rarer ones.
    public func latent(seed: UInt64, index: Int, psi: Float = 1) -> [Float] {
        var random = SeededRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let z = configuration.latents(count: 1, random: &random)
        return psi == 1 ? z : z.map { $0 * psi }
    }

    /// Images [N, C, S, S] in [-1, 1] from latents (N·nz values); a conditional model's of
    /// `classes` (nil: balanced, image i of class i mod K). The tensor can be the network's own
    /// output, overwritten by the next call: copy what must outlive it (`values`).
    public func images(latents: [Float], classes: [Int]? = nil, mixes: [ClassMix?]? = nil) -> Tensor {
        network.forward(latents: latents, classes: classes, mixes: mixes).plain()
    }

    /// Image `index` of a [N, C, S, S] batch as 8-bit pixels.
    public func pixelImage(_ images: Tensor, index: Int) -> PixelImage {
        let channels = configuration.channels, size = configuration.imageSize, plane = size * size
        var image = PixelImage(width: size, height: size, channels: channels)
        for c in 0..<channels {
            for pixel in 0..<plane {
                image.pixels[pixel * channels + c] = SampleGrid.toByte(images[(index * channels + c) * plane + pixel])
            }
        }
        return image
    }
}

/// Scores images by how real they look (higher: more real): the run's discriminator, or a
/// two-sample classifier trained for the purpose. `generate --filter` keeps the best-scored.
public protocol RealismScorer: ClassScorer {
    var name: String { get }
    /// images [N, C, S, S] plain, in [-1, 1] → N logits.
    func scores(_ images: Tensor) -> [Float]
}

/// The discriminator saved with a checkpoint, in evaluation mode: discriminator rejection
/// sampling in its simple form (Azadi et al. 2019) drops the candidates it scores lowest.
public final class DiscriminatorScorer: RealismScorer {
    public let name = "discriminator"
    let network: Sequential

    public init(run: String, checkpoint: String = "latest", backend: Backend = .fast) throws {
        let path = TrainedGenerator.resolve(run: run, checkpoint: checkpoint)
        guard FileManager.default.fileExists(atPath: path) else { throw GenerationError.noCheckpoint(path: path) }
        let (configuration, _, tensors, _) = try Checkpoint.configuration(at: path)
        network = DCGAN.discriminator(configuration, backend: backend)
        try Checkpoint.load(tensors, into: network, prefix: "discriminator.", path: path)
        network.isTraining = false
        network.needsInputGradient = false
    }

    public func scores(_ images: Tensor) -> [Float] { network.forward(images).values }
}

/// A fresh two-sample classifier (`darkroom evaluate`'s recipe) trained on real images against
/// the generator's own images (other latents than the ones it will score).
public final class TwoSampleScorer: RealismScorer {
    public let name = "two-sample"
    let classifier: TwoSampleClassifier

    /// Without evaluate's input noise: one image's score must not depend on a noise draw, and the
    /// sharp classifier ranks candidates better (README, Evaluation: −4 to −7% yardstick FID on
    /// four generators, where the noisy one gained less and the discriminator helped two of four).
    public static let recipe: TwoSampleClassifier.Recipe = {
        var recipe = TwoSampleClassifier.Recipe()
        recipe.noise = 0
        return recipe
    }()

    public init(generator: TrainedGenerator, dataset: String, count: Int = 2000, seed: UInt64 = 0,
                recipe: TwoSampleClassifier.Recipe = TwoSampleScorer.recipe) throws {
        var options = EvaluationOptions()
        options.count = count
        options.seed = seed
        let real = try RealReference.images(dataset: dataset, options: options)
        let configuration = generator.configuration
        guard real.imageSize == configuration.imageSize && real.channels == configuration.channels else {
            throw EvaluationError.mismatch(path: dataset, reason: "\(real.imageSize) px × \(real.channels), the model draws \(configuration.imageSize) px × \(configuration.channels)")
        }
        // Latents of another seed than generate's, so the classifier never saw the images it scores.
        let synthetic = GeneratorEvaluation.samples(generator, count: real.images.count / (real.channels * real.imageSize * real.imageSize),
                                                    seed: seed &+ 0x7F11_7E55)
        classifier = TwoSampleClassifier(imageSize: real.imageSize, channels: real.channels, recipe: recipe)
        classifier.train(real: real.images, synthetic: synthetic)
    }

    public func scores(_ images: Tensor) -> [Float] { classifier.scores(images.values) }
}

/// What `generate` writes.
public struct GenerationOptions: Sendable {
    public var count: Int
    public var seed: UInt64 = 0
    public var batch = 256
    public var format = "png"
    public var quality = 95
    public var overwrite = false
    /// With `augment`: a prepared dataset whose images are written too, and synthetic images per real one.
    public var augment: String?
    public var ratio: Double = 1
    /// Draw count / (1 − filter) candidates and keep the `count` the scorer rates most real.
    public var filter: Double = 0
    /// With a per-class export: which of a class's candidates `filter` keeps by the scorer's probability of the class.
    public var filterKeep = ClassFilterKeep.surest
    /// With `filterKeep` `.hardest`: the least probability of its class a kept candidate has, where
    /// enough candidates reach it.
    public var filterFloor = ClassFilterKeep.defaultFloor
    /// With `augment` and a per-class export: the `path,label` CSV saying which of the dataset's
    /// images are labelled (only those are written, each in its class's folder).
    public var labels: String?
    /// With `augment` and a per-class export: at most this many of each class's labelled images,
    /// the first in the dataset's order (nil: all of them).
    public var realPerClass: Int?
    /// With a per-class export and a labeller: the fraction of each class's candidates drawn
    /// between it and a partner class (`ClassMixing`; 0: none).
    public var classMix: Double = 0
    /// Every latent scaled by this before G (`TrainedGenerator.latent`; 1: G's own prior).
    public var psi: Float = 1
    /// `psi` as a metadata row records it: absent at 1.
    var recordedPsi: Float? { psi == 1 ? nil : psi }

    public init(count: Int) { self.count = count }

    /// Candidates drawn for `count` kept images.
    public func candidates(for count: Int) -> Int { filter > 0 ? Int((Double(count) / (1 - filter)).rounded(.up)) : count }

    /// `ratio` synthetic images per real one in a per-class export of `perClass`: at most
    /// perClass / ratio labelled real images of each class (at least one).
    public static func realPerClass(perClass: Int, ratio: Double) -> Int { max(1, Int((Double(perClass) / ratio).rounded())) }
}

/// One line of DIR/metadata.jsonl (Hugging Face imagefolder reads `file_name`).
public struct GeneratedImage: Codable, Equatable, Sendable {
    public var fileName: String
    public var source: String
    public var index: Int
    public var seed: UInt64?
    public var checkpoint: String?
    public var path: String?
    /// The filter's score when `generate --filter` chose the image (higher: kept first): a realism
    /// logit, or the labeller's probability of the image's class (`--filter-by labeller`).
    public var score: Float?
    /// `generate --per-class`: the image's class, and the probability D's classifier head gives it.
    public var label: String?
    public var confidence: Float?
    /// `generate --per-class --labeller`: the labeller's probability of each of the model's classes
    /// (in class-index order), soft labels for the image.
    public var labellerProbabilities: [Float]?
    /// `--class-mix`: the class G's row was moved toward, and by how much (the rest is `label`'s).
    public var mixedWith: String?
    public var mixWeight: Float?
    /// `generate --psi`: the scale of the image's latent (absent: 1, G's prior).
    public var psi: Float?

    enum CodingKeys: String, CodingKey {
        case fileName = "file_name", source, index, seed, checkpoint, path, score, label, confidence, psi
        case labellerProbabilities = "labeller_probabilities", mixedWith = "mixed_with", mixWeight = "mix_weight"
    }
}

public enum Generation {
    /// Writes DIR/images/NNNNNN.png (or .jpg), DIR/latents.npy (N, nz) float32 and DIR/metadata.jsonl.
    /// Files are written under DIR only, each atomically; metadata.jsonl last, so its presence marks
    /// a finished output. A DIR holding only an unfinished output of this function (its own files,
    /// no metadata.jsonl: an interrupted run) is taken over as if `overwrite` were given.
    /// With `options.filter`, `scorer` rates count / (1 − filter) candidates and the best `count`
    /// are written (in latent order; `index` is each one's latent index, `score` its rating).
    @discardableResult
    public static func write(_ generator: TrainedGenerator, options: GenerationOptions, to directory: String, scorer: RealismScorer? = nil,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> [GeneratedImage] {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        let unfinished = !existing.isEmpty && isUnfinishedOutput(root)
        guard existing.isEmpty || options.overwrite || unfinished else { throw GenerationError.outputNotEmpty(path: root.path) }
        let imagesDirectory = root.appendingPathComponent("images")
        if options.overwrite || unfinished { try removePreviousOutputs(root) }
        try FileManager.default.createDirectory(at: imagesDirectory, withIntermediateDirectories: true)
        let fileExtension = options.format == "jpg" ? "jpg" : "png"
        var rows: [GeneratedImage] = []

        func encode(_ image: PixelImage) throws -> [UInt8] {
            fileExtension == "jpg" ? try JPEG.encode(image, quality: options.quality) : try PNG.encode(image)
        }

        var syntheticCount = options.count
        if let augment = options.augment {
            let loader = try BatchLoader(directory: augment, batchSize: 256, seed: 0, dropLast: false, shuffle: false)
            let index = try DatasetIndex.read(augment)
            syntheticCount = Int((Double(loader.manifest.count) * options.ratio).rounded())
            for batch in loader.epoch(0) {
                for (slot, row) in batch.rows.enumerated() {
                    let image = pixelImage(batch.images, slot: slot, size: loader.manifest.size, channels: loader.manifest.channels)
                    let name = String(format: "images/real-%06d.%@", row, fileExtension)
                    try AtomicFile.write(try encode(image), to: root.appendingPathComponent(name).path)
                    rows.append(GeneratedImage(fileName: name, source: "real", index: row, seed: nil, checkpoint: nil, path: index[row]?.path, score: nil))
                }
            }
        }

        // Latent indices to draw, and their scores when filtering.
        var chosen = Array(0..<syntheticCount)
        var scoreOf: [Int: Float] = [:]
        if let scorer, options.filter > 0 {
            let candidates = options.candidates(for: syntheticCount)
            var scores: [Float] = []
            for start in stride(from: 0, to: candidates, by: options.batch) {
                let latents = (start..<min(start + options.batch, candidates)).flatMap { generator.latent(seed: options.seed, index: $0, psi: options.psi) }
                scores += scorer.scores(generator.images(latents: latents))
            }
            chosen = scores.indices.sorted { scores[$0] > scores[$1] }.prefix(syntheticCount).sorted()
            for index in chosen { scoreOf[index] = scores[index] }
        }

        var latents: [Float] = []
        latents.reserveCapacity(syntheticCount * generator.configuration.nz)
        for start in stride(from: 0, to: syntheticCount, by: options.batch) {
            let count = min(options.batch, syntheticCount - start)
            var batchLatents: [Float] = []
            for index in chosen[start..<start + count] { batchLatents += generator.latent(seed: options.seed, index: index, psi: options.psi) }
            let images = generator.images(latents: batchLatents)
            for slot in 0..<count {
                let name = String(format: "images/%06d.%@", start + slot, fileExtension)
                try AtomicFile.write(try encode(generator.pixelImage(images, index: slot)), to: root.appendingPathComponent(name).path)
                rows.append(GeneratedImage(fileName: name, source: "synthetic", index: chosen[start + slot], seed: options.seed,
                                           checkpoint: generator.checkpointDigest, path: nil, score: scoreOf[chosen[start + slot]],
                                           psi: options.recordedPsi))
            }
            latents += batchLatents
            progress(start + count, syntheticCount)
        }

        try writeIndex(rows, latents: latents, nz: generator.configuration.nz, to: root)
        return rows
    }

    /// Image `slot` of plain NCHW values in [-1, 1] as 8-bit pixels.
    static func pixelImage(_ values: [Float], slot: Int, size: Int, channels: Int) -> PixelImage {
        let plane = size * size
        var image = PixelImage(width: size, height: size, channels: channels)
        for c in 0..<channels {
            for pixel in 0..<plane { image.pixels[pixel * channels + c] = SampleGrid.toByte(values[(slot * channels + c) * plane + pixel]) }
        }
        return image
    }

    /// DIR/latents.npy (N, nz) and then DIR/metadata.jsonl, whose presence marks a finished output.
    static func writeIndex(_ rows: [GeneratedImage], latents: [Float], nz: Int, to root: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var jsonl: [UInt8] = []
        for row in rows { jsonl += Array(try encoder.encode(row)) + [UInt8(ascii: "\n")] }
        let header = Npy.header(dtype: .float32, shape: [latents.count / nz, nz])
        try AtomicFile.write(header + latents.withUnsafeBytes { Array($0) }, to: root.appendingPathComponent("latents.npy").path)
        try AtomicFile.write(jsonl, to: root.appendingPathComponent("metadata.jsonl").path)
    }


    /// Deletes what an earlier `write` left in DIR (its own file names only), so images and
    /// metadata always agree; anything else in DIR is kept.
    static func removePreviousOutputs(_ root: URL) throws {
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? [] where isOwnTopLevelFile(name) {
            try fileManager.removeItem(at: root.appendingPathComponent(name))
        }
        let images = root.appendingPathComponent("images")
        for name in (try? fileManager.contentsOfDirectory(atPath: images.path)) ?? [] where isOwnImageFile(name) {
            try fileManager.removeItem(at: images.appendingPathComponent(name))
        }
    }

    /// Names `write` gives, or gave a temporary file it was killed before renaming.
    private static func finalName(_ name: String) -> String { AtomicFile.targetName(ofTemporary: name) ?? name }

    static func isOwnTopLevelFile(_ name: String) -> Bool { ["metadata.jsonl", "latents.npy"].contains(finalName(name)) }

    static func isOwnImageFile(_ name: String) -> Bool {
        let name = finalName(name)
        let stem = name.hasPrefix("real-") ? String(name.dropFirst(5)) : name
        let parts = stem.split(separator: ".")
        return parts.count == 2 && parts[0].count == 6 && parts[0].allSatisfy(\.isNumber) && ["png", "jpg"].contains(String(parts[1]))
    }

    /// DIR holds nothing but files `write` makes, and no metadata.jsonl: a run that did not finish.
    static func isUnfinishedOutput(_ root: URL) -> Bool {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: root.path), !names.contains("metadata.jsonl"),
              names.allSatisfy({ $0 == "images" || isOwnTopLevelFile($0) }) else { return false }
        let images = (try? fileManager.contentsOfDirectory(atPath: root.appendingPathComponent("images").path)) ?? []
        return images.allSatisfy(isOwnImageFile)
    }

    /// A grid of `walks` rows, each interpolating linearly between two random latents in `steps` steps
    /// (the DCGAN paper's latent-space walks), the ends scaled by `psi`.
    public static func interpolationGrid(_ generator: TrainedGenerator, walks: Int, steps: Int = 10, seed: UInt64, psi: Float = 1) -> PixelImage {
        var latents: [Float] = []
        for walk in 0..<walks {
            let start = generator.latent(seed: seed, index: 2 * walk, psi: psi), end = generator.latent(seed: seed, index: 2 * walk + 1, psi: psi)
            for step in 0..<steps {
                let t = Float(step) / Float(max(steps - 1, 1))
                latents += zip(start, end).map { (1 - t) * $0 + t * $1 }
            }
        }
        return SampleGrid.image(generator.images(latents: latents), columns: steps)
    }

    /// Reads a latents.npy written by `write`.
    public static func readLatents(_ path: String, nz: Int) throws -> [Float] {
        let (header, data) = try Npy.read(path: path)
        guard header.dtype == .float32, header.shape.count == 2, header.shape[1] == nz else {
            throw GenerationError.badLatents(path: path, reason: "expected float32 (N, \(nz)), found \(header.dtype) \(header.shape)")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
