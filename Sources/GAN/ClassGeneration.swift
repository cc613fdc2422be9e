import Dataset
import Foundation
import Formats
import Imaging
import NN

/// D's classifier head of a class-conditional checkpoint, in evaluation mode: how sure it is of
/// each image's class (the confidence `generate --per-class` records).
public final class ClassConfidence: ClassScorer {
    public let name = "classifier head"
    let discriminator: Discriminator

    public init(run: String, checkpoint: String = "latest") throws {
        let path = TrainedGenerator.resolve(run: run, checkpoint: checkpoint)
        guard FileManager.default.fileExists(atPath: path) else { throw GenerationError.noCheckpoint(path: path) }
        let (configuration, _, tensors, _) = try Checkpoint.configuration(at: path)
        guard configuration.isConditional else { throw GenerationError.notConditional(path: path) }
        discriminator = Discriminator(configuration, backend: .fast)
        try Checkpoint.load(tensors, into: discriminator.network, prefix: "discriminator.", path: path)
        try Checkpoint.load(tensors, into: discriminator.classifier!, prefix: "discriminator.", path: path)
        discriminator.isTraining = false
        discriminator.needsInputGradient = false
    }

    /// images [N, C, S, S] plain in [-1, 1] → each image's softmax probability of `classes[i]`.
    public func confidence(_ images: Tensor, classes: [Int]) -> [Float] {
        discriminator.forwardFeatures(images)
        let logits = discriminator.classify()
        let width = logits.count / logits.shape[0]
        return classes.enumerated().map { row, label in
            Loss.softmax(UnsafeBufferPointer(start: logits.data + row * width, count: width))[label]
        }
    }

    public func scores(_ images: Tensor, classes: [Int]) -> [Float] { confidence(images, classes: classes) }
}

/// Which of a class's filter candidates to keep, by their scores (a probability of the class asked for).
public enum ClassFilterKeep: String, Sendable, Codable, CaseIterable {
    /// The highest-scored: the clearest images of the class.
    case surest
    /// The lowest-scored of those the scorer gives at least half the probability (so calls the
    /// class), then the surest of the rest: the class's images nearest its boundaries, the ones a
    /// classifier of real images learns most from, without the ones drawn as another class.
    case hardest

    /// The `count` candidate indices kept, in ascending order.
    public func choose(_ scores: [Float], count: Int) -> [Int] {
        let ranked: [Int]
        switch self {
        case .surest:
            ranked = scores.indices.sorted { scores[$0] > scores[$1] }
        case .hardest:
            let (agreeing, rest) = (scores.indices.filter { scores[$0] >= 0.5 }, scores.indices.filter { scores[$0] < 0.5 })
            ranked = agreeing.sorted { scores[$0] < scores[$1] } + rest.sorted { scores[$0] > scores[$1] }
        }
        return ranked.prefix(count).sorted()
    }
}

extension Generation {
    /// A class's folder name under DIR/images: the label, with characters a path cannot hold
    /// ("/", a leading ".") replaced by "_" (metadata.jsonl keeps the label as it is).
    public static func classFolder(_ label: String) -> String {
        var name = label.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\0", with: "_")
        if name.hasPrefix(".") || name.isEmpty { name = "_" + name }
        return name
    }

    /// `generate --per-class N`: N images of every class of a class-conditional model, in
    /// torchvision's ImageFolder layout, DIR/images/<label>/NNNNNN.png, with DIR/latents.npy and
    /// DIR/metadata.jsonl (`file_name`, `label`, `source`, `seed`, `index`, `checkpoint`, and
    /// `confidence`: D's classifier head's probability of the label). Image `index` k·N + j is
    /// class k's j-th, from latent `index` of `seed`. With `options.filter`, N/(1 − filter)
    /// candidates per class are drawn and N kept, class by class: those the scorer rates highest, or
    /// with `options.filterKeep` `.hardest` the least sure of those it calls their class.
    /// With `options.augment` (a prepared dataset) and `options.labels`, the dataset's labelled
    /// images are written too, DIR/images/<label>/real-NNNNNN.png, rows with `source` "real".
    /// With `labeller`, each synthetic row has its `labeller_probabilities`.
    @discardableResult
    public static func writePerClass(_ generator: TrainedGenerator, perClass: Int, options: GenerationOptions, to directory: String,
                                     confidence: ClassConfidence, scorer: ClassScorer? = nil, labeller: LabellerScorer? = nil,
                                     progress: (Int, Int) -> Void = { _, _ in }) throws -> [GeneratedImage] {
        let classes = generator.configuration.classes
        guard !classes.isEmpty else { throw GenerationError.notConditional(path: generator.checkpointPath) }
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let fileManager = FileManager.default
        let existing = (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? []
        guard existing.isEmpty || options.overwrite else { throw GenerationError.outputNotEmpty(path: root.path) }
        if options.overwrite {
            for name in existing where isOwnTopLevelFile(name) { try fileManager.removeItem(at: root.appendingPathComponent(name)) }
            for label in classes {
                let folder = root.appendingPathComponent("images/" + classFolder(label))
                for name in (try? fileManager.contentsOfDirectory(atPath: folder.path)) ?? [] where isOwnImageFile(name) {
                    try fileManager.removeItem(at: folder.appendingPathComponent(name))
                }
            }
        }
        let fileExtension = options.format == "jpg" ? "jpg" : "png"
        func encode(_ image: PixelImage) throws -> [UInt8] {
            fileExtension == "jpg" ? try JPEG.encode(image, quality: options.quality) : try PNG.encode(image)
        }
        var rows: [GeneratedImage] = [], latents: [Float] = []
        let candidates = scorer != nil && options.filter > 0 ? options.candidates(for: perClass) : perClass
        for (label, name) in classes.enumerated() {
            let folder = "images/" + classFolder(name)
            try fileManager.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
            // Candidate c of this class is latent index label·candidates + c.
            var chosen = Array(0..<perClass)
            var scoreOf: [Int: Float] = [:]
            if let scorer, candidates > perClass {
                var scores: [Float] = []
                for start in stride(from: 0, to: candidates, by: options.batch) {
                    let indices = start..<min(start + options.batch, candidates)
                    let batchLatents = indices.flatMap { generator.latent(seed: options.seed, index: label * candidates + $0) }
                    let labels = indices.map { _ in label }
                    scores += scorer.scores(generator.images(latents: batchLatents, classes: labels), classes: labels)
                }
                chosen = options.filterKeep.choose(scores, count: perClass)
                for index in chosen { scoreOf[index] = scores[index] }
            }
            for start in stride(from: 0, to: perClass, by: options.batch) {
                let slots = chosen[start..<min(start + options.batch, perClass)]
                let batchLatents = slots.flatMap { generator.latent(seed: options.seed, index: label * candidates + $0) }
                let labels = slots.map { _ in label }
                let images = generator.images(latents: batchLatents, classes: labels)
                let sure = confidence.confidence(images, classes: labels)
                let soft = labeller?.probabilities(images)
                for (offset, candidate) in slots.enumerated() {
                    let fileName = String(format: "%@/%06d.%@", folder, label * perClass + start + offset, fileExtension)
                    let image = generator.pixelImage(images, index: offset)
                    try AtomicFile.write(try encode(image), to: root.appendingPathComponent(fileName).path)
                    rows.append(GeneratedImage(fileName: fileName, source: "synthetic", index: label * candidates + candidate, seed: options.seed,
                                               checkpoint: generator.checkpointDigest, path: nil, score: scoreOf[candidate], label: name,
                                               confidence: sure[offset], labellerProbabilities: soft?[offset]))
                }
                latents += batchLatents
                progress(rows.count, perClass * classes.count)
            }
        }
        if let augment = options.augment {
            guard let labels = options.labels else { throw LabelError.unreadable(path: augment, reason: "mixing real images into a per-class set needs their labels") }
            let (rowClasses, _) = try LabelFile(path: labels).datasetLabels(augment, classes: classes)
            let index = try DatasetIndex.read(augment)
            let loader = try BatchLoader(directory: augment, batchSize: 256, seed: 0, dropLast: false, shuffle: false)
            for batch in loader.epoch(0) {
                for (slot, row) in batch.rows.enumerated() where rowClasses.indices.contains(row) && rowClasses[row] >= 0 {
                    let label = classes[rowClasses[row]]
                    let fileName = String(format: "images/%@/real-%06d.%@", classFolder(label), row, fileExtension)
                    let image = pixelImage(batch.images, slot: slot, size: loader.manifest.size, channels: loader.manifest.channels)
                    try AtomicFile.write(try encode(image), to: root.appendingPathComponent(fileName).path)
                    rows.append(GeneratedImage(fileName: fileName, source: "real", index: row, seed: nil, checkpoint: nil, path: index[row]?.path,
                                               score: nil, label: label, confidence: nil))
                }
            }
        }
        try writeIndex(rows, latents: latents, nz: generator.configuration.nz, to: root)
        return rows
    }
}
