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
    /// The lowest-scored of those the scorer gives at least `floor` (by default half the
    /// probability, so calls the class), then the surest of the rest: the class's images nearest
    /// its boundaries, the ones a classifier of real images learns most from, without the ones
    /// drawn as another class.
    case hardest

    /// `hardest`'s least score where enough candidates reach it.
    public static let defaultFloor = 0.5

    /// The `count` candidate indices kept, in ascending order.
    public func choose(_ scores: [Float], count: Int, floor: Double = ClassFilterKeep.defaultFloor) -> [Int] {
        let ranked: [Int]
        switch self {
        case .surest:
            ranked = scores.indices.sorted { scores[$0] > scores[$1] }
        case .hardest:
            let floor = Float(floor)
            let (agreeing, rest) = (scores.indices.filter { scores[$0] >= floor }, scores.indices.filter { scores[$0] < floor })
            ranked = agreeing.sorted { scores[$0] < scores[$1] } + rest.sorted { scores[$0] > scores[$1] }
        }
        return ranked.prefix(count).sorted()
    }
}

/// How a per-class set's candidates are chosen where the command line leaves it unset. With a
/// labeller (given, or the one the run trained with): the set measured best (README, utility),
/// the quarter of four times the candidates it is least sure of among those it calls their class,
/// a quarter of them drawn between classes, from latents scaled by 1.5. Without one: every image as
/// drawn from G's prior.
public struct ClassSetChoice: Equatable, Sendable {
    /// The fraction of candidates dropped (nil: none).
    public var filter: Double?
    /// The labeller scores the candidates (false: the command's own default scorer).
    public var byLabeller: Bool
    public var keep: ClassFilterKeep
    public var classMix: Double
    /// The latents' scale (`GenerationOptions.psi`).
    public var psi: Float

    public static let measuredBest = ClassSetChoice(filter: 0.75, byLabeller: true, keep: .hardest, classMix: 0.25, psi: 1.5)

    /// Each argument as given (nil: left unset). The wider latents come only with the labeller's
    /// filter, which drops the rarer draws it does not call their class.
    public static func resolve(filter: Double?, byLabeller: Bool?, keep: ClassFilterKeep?, classMix: Double?, psi: Float? = nil,
                               hasLabeller: Bool) -> ClassSetChoice {
        let byLabeller = byLabeller ?? hasLabeller
        let best = byLabeller && hasLabeller
        let filter = filter ?? (best ? measuredBest.filter : nil)
        return ClassSetChoice(filter: filter, byLabeller: byLabeller,
                              keep: keep ?? (best ? measuredBest.keep : .surest),
                              classMix: classMix ?? (hasLabeller ? measuredBest.classMix : 0),
                              psi: psi ?? (best && (filter ?? 0) > 0 ? measuredBest.psi : 1))
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
    /// with `options.filterKeep` `.hardest` the least sure of those it scores at least
    /// `options.filterFloor`. With `options.augment` (a prepared dataset) and `options.labels`,
    /// the dataset's labelled images are written too (at most `options.realPerClass` of a class),
    /// DIR/images/<label>/real-NNNNNN.png, rows with `source` "real".
    /// With `labeller`, each synthetic row has its `labeller_probabilities`; with it and
    /// `options.classMix`, the last of each class's candidates are drawn between classes
    /// (`ClassMixing`), rows saying `mixed_with` and `mix_weight`.
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
        guard options.classMix == 0 || labeller != nil else {
            throw LabelError.unreadable(path: generator.checkpointPath, reason: "class mixing needs a labeller (label --save-labeller)")
        }
        let mixing = options.classMix > 0 ? ClassMixing(fraction: options.classMix) : nil
        var rows: [GeneratedImage] = [], latents: [Float] = []
        let candidates = scorer != nil && options.filter > 0 ? options.candidates(for: perClass) : perClass
        for (label, name) in classes.enumerated() {
            let folder = "images/" + classFolder(name)
            try fileManager.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
            // Candidate c of this class is latent index label·candidates + c.
            var mixes = [ClassMix?](repeating: nil, count: candidates)
            if let mixing, let labeller {
                // The partners come from the labeller's reading of the class's unmixed candidates.
                let plain = candidates - mixing.mixedCount(of: candidates)
                var probabilities: [[Float]] = []
                for start in stride(from: 0, to: plain, by: options.batch) {
                    let indices = start..<min(start + options.batch, plain)
                    let batchLatents = indices.flatMap { generator.latent(seed: options.seed, index: label * candidates + $0, psi: options.psi) }
                    probabilities += labeller.readings(generator.images(latents: batchLatents, classes: indices.map { _ in label })).map(\.probabilities)
                }
                let partners = ClassMixing.partnerWeights(probabilities, label: label, classes: classes.count)
                mixes = mixing.mixes(label: label, candidates: candidates, partnerWeights: partners, seed: options.seed)
            }
            var chosen = Array(0..<perClass)
            var scoreOf: [Int: Float] = [:]
            if let scorer, candidates > perClass {
                var scores: [Float] = []
                for start in stride(from: 0, to: candidates, by: options.batch) {
                    let indices = start..<min(start + options.batch, candidates)
                    let batchLatents = indices.flatMap { generator.latent(seed: options.seed, index: label * candidates + $0, psi: options.psi) }
                    let labels = indices.map { _ in label }
                    scores += scorer.scores(generator.images(latents: batchLatents, classes: labels, mixes: Array(mixes[indices])), classes: labels)
                }
                chosen = options.filterKeep.choose(scores, count: perClass, floor: options.filterFloor)
                for index in chosen { scoreOf[index] = scores[index] }
            }
            for start in stride(from: 0, to: perClass, by: options.batch) {
                let slots = chosen[start..<min(start + options.batch, perClass)]
                let batchLatents = slots.flatMap { generator.latent(seed: options.seed, index: label * candidates + $0, psi: options.psi) }
                let labels = slots.map { _ in label }
                let images = generator.images(latents: batchLatents, classes: labels, mixes: slots.map { mixes[$0] })
                let sure = confidence.confidence(images, classes: labels)
                let soft = labeller?.probabilities(images)
                for (offset, candidate) in slots.enumerated() {
                    let fileName = String(format: "%@/%06d.%@", folder, label * perClass + start + offset, fileExtension)
                    let image = generator.pixelImage(images, index: offset)
                    try AtomicFile.write(try encode(image), to: root.appendingPathComponent(fileName).path)
                    rows.append(GeneratedImage(fileName: fileName, source: "synthetic", index: label * candidates + candidate, seed: options.seed,
                                               checkpoint: generator.checkpointDigest, path: nil, score: scoreOf[candidate], label: name,
                                               confidence: sure[offset], labellerProbabilities: soft?[offset],
                                               mixedWith: mixes[candidate].map { classes[$0.partner] }, mixWeight: mixes[candidate]?.weight,
                                               psi: options.recordedPsi))
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
            var written = [Int](repeating: 0, count: classes.count)
            for batch in loader.epoch(0) {
                for (slot, row) in batch.rows.enumerated() where rowClasses.indices.contains(row) && rowClasses[row] >= 0 {
                    if let cap = options.realPerClass, written[rowClasses[row]] >= cap { continue }
                    written[rowClasses[row]] += 1
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

/// A labelled synthetic set read back from folders `generate --per-class` wrote: each
/// metadata.jsonl row that is not `source` "real", its image decoded to plain [-1, 1] values.
public struct ExportedClassSet {
    /// [N, C, S, S] in [-1, 1], as the dataset's images are.
    public var images: [Float] = []
    /// Each image's class index, by its row's `label` among the model's classes.
    public var classes: [Int] = []
    /// Each row's `labeller_probabilities` (nil where a row has none).
    public var probabilities: [[Float]?] = []
    /// Rows with `source` "real" (`--augment`'s labelled real images), skipped.
    public var realRows = 0

    public var count: Int { classes.count }

    /// Reads `folders` in turn for a model of `classes` making `channels`×`size`² images. A row's
    /// image that is missing, undecodable or of another size stops the read, naming the file.
    public static func read(_ folders: [String], classes: [String], size: Int, channels: Int) throws -> ExportedClassSet {
        var set = ExportedClassSet()
        let plane = size * size, decoder = JSONDecoder()
        for folder in folders {
            let root = URL(fileURLWithPath: folder).standardizedFileURL
            let metadata = root.appendingPathComponent("metadata.jsonl").path
            guard let text = try? String(contentsOfFile: metadata, encoding: .utf8) else {
                throw LabelError.unreadable(path: metadata, reason: "cannot read it (is \(folder) a folder generate --per-class wrote?)")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
                let place = "\(metadata), line \(number + 1)"
                guard let row = try? decoder.decode(GeneratedImage.self, from: Data(line.utf8)) else {
                    throw LabelError.unreadable(path: place, reason: "not a metadata row (file_name, source, index, …)")
                }
                if row.source == "real" {
                    set.realRows += 1
                    continue
                }
                guard let label = row.label else { throw LabelError.unreadable(path: place, reason: "the row has no label (a set from generate --per-class has one)") }
                guard let index = classes.firstIndex(of: label) else { throw LabelError.unknownClass(path: place, label: label, classes: classes) }
                let components = row.fileName.split(separator: "/")
                guard !row.fileName.hasPrefix("/"), !components.contains("..") else {
                    throw LabelError.unreadable(path: place, reason: "file_name \(row.fileName) is outside the folder")
                }
                let file = root.appendingPathComponent(row.fileName).path
                guard let bytes = FileManager.default.contents(atPath: file) else { throw LabelError.unreadable(path: file, reason: "cannot read the image") }
                let image: PixelImage
                do { image = try ImageCodec.decode([UInt8](bytes)) } catch { throw LabelError.unreadable(path: file, reason: "\(error)") }
                guard image.width == size, image.height == size else {
                    throw LabelError.unreadable(path: file, reason: "the image is \(image.width)×\(image.height), the model's are \(size)×\(size)")
                }
                if let p = row.labellerProbabilities, p.count != classes.count {
                    throw LabelError.unreadable(path: place, reason: "labeller_probabilities has \(p.count) values for the model's \(classes.count) classes")
                }
                set.images += normalisePixels(image.converted(toChannels: channels).pixels, plane: plane, channels: channels)
                set.classes.append(index)
                set.probabilities.append(row.labellerProbabilities)
            }
        }
        guard set.count > 0 else { throw LabelError.unreadable(path: folders.joined(separator: ", "), reason: "no synthetic images in metadata.jsonl") }
        return set
    }
}

/// An image drawn between its class and another: G's class row (1 − weight)·e_k + weight·e_partner.
public struct ClassMix: Sendable, Equatable, Codable {
    public var partner: Int
    public var weight: Float

    public init(partner: Int, weight: Float) {
        self.partner = partner
        self.weight = weight
    }
}

/// `--class-mix F`: the last F of each class's candidates are drawn between the class and a
/// partner class, G's class row moved toward the partner by a weight uniform in [0, 0.5), so
/// the set holds images near the class's boundaries, which G drawn from one-hot rows rarely gives.
/// Partners are drawn in proportion to the labeller's probabilities of the other classes on the
/// class's own (unmixed) candidates: a class is mixed toward the classes it is mistaken for.
/// The weight stays under one half, so each image stays nearer its own class (and class-norm's
/// affines, which take the larger weight's class, keep it); the labeller's soft label says how far.
public struct ClassMixing: Sendable, Equatable {
    public var fraction: Double
    public static let maximumWeight: Float = 0.5

    public init(fraction: Double) {
        precondition((0..<1).contains(fraction), "a class-mix fraction in [0, 1)")
        self.fraction = fraction
    }

    /// How many of a class's `candidates` are mixed.
    public func mixedCount(of candidates: Int) -> Int { Int((Double(candidates) * fraction).rounded()) }

    /// The partners' weights for class `label`: its unmixed candidates' mean labeller probability
    /// of each other class (zero at `label`).
    public static func partnerWeights(_ probabilities: [[Float]], label: Int, classes: Int) -> [Double] {
        var weights = [Double](repeating: 0, count: classes)
        for row in probabilities { for (k, p) in row.enumerated() where k != label { weights[k] += Double(p) } }
        let total = weights.reduce(0, +)
        // A labeller sure of every candidate names no partner: then every other class is one.
        return total > 0 ? weights.map { $0 / total } : (0..<classes).map { $0 == label ? 0 : 1 / Double(classes - 1) }
    }

    /// Class `label`'s candidates' mixes: nil for the first (unmixed) ones, then `mixedCount` drawn
    /// with `partnerWeights`, from `seed` and the class alone.
    public func mixes(label: Int, candidates: Int, partnerWeights: [Double], seed: UInt64) -> [ClassMix?] {
        let mixed = mixedCount(of: candidates)
        var random = SeededRandom(seed: seed &+ 0xC1A5_5313 &+ UInt64(label) &* 0x9E37_79B9_7F4A_7C15)
        let cumulative = partnerWeights.reduce(into: [Double]()) { $0.append(($0.last ?? 0) + $1) }
        let plain: [ClassMix?] = Array(repeating: nil, count: candidates - mixed)
        return plain + (0..<mixed).map { _ in
            let u = Double(random.nextUniform()) * (cumulative.last ?? 1)
            let partner = cumulative.firstIndex { u < $0 } ?? partnerWeights.indices.last { partnerWeights[$0] > 0 }!
            return ClassMix(partner: partner, weight: random.nextUniform() * ClassMixing.maximumWeight)
        }
    }
}
