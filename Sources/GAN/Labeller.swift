import Evaluation
import Foundation
import Formats
import NN

/// The classifier `darkroom label` trains (FixMatch on the utility CNN), saved with
/// `label --save-labeller` so that `generate --per-class` and `utility` can keep the synthetic
/// images it agrees with (`--filter-by labeller`). A safetensors file: the CNN's tensors by layer
/// index (`0.weight`, `3.running_mean`, …) and, in `__metadata__`, `format` "darkroom-labeller",
/// `classes` (a JSON list of the labels, in class-index order), `image_size`, `channels`, `width` and
/// `depth` (absent in labellers written before it: 0).
public final class Labeller {
    public static let format = "darkroom-labeller"
    public let classifier: DownstreamClassifier
    public let classes: [String]
    /// Where it was read from, for errors.
    public let path: String

    public init(classifier: DownstreamClassifier, classes: [String], path: String = "<labeller>") {
        precondition(classifier.classes == classes.count, "one label per class")
        self.classifier = classifier
        self.classes = classes
        self.path = path
    }

    public convenience init(path: String) throws {
        let (tensors, metadata): ([String: Safetensors.Entry], [String: String])
        do {
            (tensors, metadata) = try Safetensors.read(path: path)
        } catch {
            throw LabelError.unreadable(path: path, reason: "not a labeller: \(error)")
        }
        guard metadata["format"] == Labeller.format else {
            throw LabelError.unreadable(path: path, reason: "not a labeller (no format \"\(Labeller.format)\"; write one with label --save-labeller)")
        }
        guard let size = metadata["image_size"].flatMap(Int.init), let channels = metadata["channels"].flatMap(Int.init),
              let width = metadata["width"].flatMap(Int.init), size >= 8, channels >= 1, width >= 1,
              let classes = metadata["classes"].flatMap({ try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }), classes.count >= 2 else {
            throw LabelError.unreadable(path: path, reason: "a labeller's metadata needs image_size, channels, width and at least two classes")
        }
        guard let depth = Int(metadata["depth"] ?? "0"), depth >= 0 else {
            throw LabelError.unreadable(path: path, reason: "a labeller's depth must be a count of layers, not \(metadata["depth"] ?? "")")
        }
        var recipe = DownstreamClassifier.Recipe()
        recipe.width = width
        recipe.depth = depth
        let classifier = DownstreamClassifier(imageSize: size, channels: channels, classes: classes.count, recipe: recipe)
        do {
            try Checkpoint.load(tensors, into: classifier.network, prefix: "", path: path)
        } catch {
            throw LabelError.unreadable(path: path, reason: "\(error)")
        }
        classifier.network.isTraining = false
        self.init(classifier: classifier, classes: classes, path: path)
    }

    public func write(to path: String) throws {
        let metadata = ["format": Labeller.format, "image_size": "\(classifier.imageSize)", "channels": "\(classifier.channels)",
                        "width": "\(classifier.recipe.width)", "depth": "\(classifier.recipe.depth)", "classes": String(decoding: try JSONEncoder().encode(classes), as: UTF8.self)]
        do {
            try Safetensors.write(Checkpoint.tensors(of: classifier.network, prefix: ""), metadata: metadata, to: path)
        } catch {
            throw LabelError.unreadable(path: path, reason: "cannot write: \(error)")
        }
    }

    /// The labeller as a scorer of a class-conditional model's images, classes matched by name.
    public func scorer(for model: DCGANConfiguration) throws -> LabellerScorer {
        try LabellerScorer(labellers: [self], for: model)
    }
}

/// Scores a class's candidates for `--filter` in a per-class set (higher: keep).
public protocol ClassScorer: AnyObject {
    var name: String { get }
    /// images [N, C, S, S] plain in [-1, 1], each generated as `classes[i]` → N scores.
    func scores(_ images: Tensor, classes: [Int]) -> [Float]
}

/// A realism score ignores the class.
extension RealismScorer {
    public func scores(_ images: Tensor, classes: [Int]) -> [Float] { scores(images) }
}

/// The labeller's probability that an image is the class it was generated as. Several labellers
/// (say, `label` run with other seeds or widths) make an ensemble: their probabilities are averaged,
/// which is surer than any one of them where their mistakes differ.
public final class LabellerScorer: ClassScorer {
    public let name: String
    let labellers: [Labeller]
    /// For each labeller: its class index of each of the first labeller's classes.
    let alignments: [[Int]]
    /// Model class index → the first labeller's class index.
    let mapping: [Int]

    /// The labellers saved at `paths` (none: nil).
    public static func load(_ paths: [String], for model: DCGANConfiguration) throws -> LabellerScorer? {
        paths.isEmpty ? nil : try LabellerScorer(labellers: paths.map { try Labeller(path: $0) }, for: model)
    }

    /// Every labeller must read the model's images and know the same classes.
    public init(labellers: [Labeller], for model: DCGANConfiguration) throws {
        precondition(!labellers.isEmpty, "at least one labeller")
        let first = labellers[0]
        for labeller in labellers {
            let classifier = labeller.classifier
            guard model.imageSize == classifier.imageSize, model.channels == classifier.channels else {
                throw LabelError.unreadable(path: labeller.path, reason: "the labeller reads \(classifier.channels)×\(classifier.imageSize)² images, the model makes \(model.channels)×\(model.imageSize)²")
            }
            guard Set(labeller.classes) == Set(first.classes) else {
                throw LabelError.unreadable(path: labeller.path, reason: "an ensemble's labellers must know the same classes; this one knows \(labeller.classes.sorted()), \(first.path) knows \(first.classes.sorted())")
            }
        }
        mapping = try model.classes.map { label in
            guard let index = first.classes.firstIndex(of: label) else { throw LabelError.unknownClass(path: first.path, label: label, classes: first.classes) }
            return index
        }
        alignments = labellers.map { labeller in first.classes.map { labeller.classes.firstIndex(of: $0)! } }
        self.labellers = labellers
        name = labellers.count == 1 ? "labeller" : "ensemble of \(labellers.count) labellers"
    }

    /// images [N, C, S, S] plain in [-1, 1] → N × the first labeller's classes: the labellers' mean.
    func probabilities(of values: [Float]) -> [[Float]] {
        let share = 1 / Float(labellers.count)
        var mean: [[Float]] = []
        for (labeller, alignment) in zip(labellers, alignments) {
            let own = labeller.classifier.probabilities(values).map { p in alignment.map { share * p[$0] } }
            mean = mean.isEmpty ? own : zip(mean, own).map { sum, p in zip(sum, p).map(+) }
        }
        return mean
    }

    /// What the labeller makes of one image, in the model's classes: one forward pass (a labeller)
    /// gives the filter's score, the soft label and the prediction.
    public struct Reading: Sendable {
        /// Its probability of each model class, as the labeller gives it.
        public let classProbabilities: [Float]
        /// Its most probable class of its own, as a model class index (−1: a class the model lacks).
        public let prediction: Int

        /// The soft label: `classProbabilities` renormalised over the model's classes (they sum to
        /// less than 1 when the labeller knows more classes).
        public var probabilities: [Float] {
            let total = classProbabilities.reduce(0, +)
            return classProbabilities.map { $0 / max(total, .leastNormalMagnitude) }
        }
    }

    /// images [N, C, S, S] plain in [-1, 1] → N readings.
    public func readings(_ images: Tensor) -> [Reading] { readings(of: images.values) }

    /// The same from the images' values, in batches of the classifier's own.
    func readings(of values: [Float]) -> [Reading] {
        probabilities(of: values).map { p in
            let best = p.indices.max { p[$0] < p[$1] }!
            return Reading(classProbabilities: mapping.map { p[$0] }, prediction: mapping.firstIndex(of: best) ?? -1)
        }
    }

    public func scores(_ images: Tensor, classes: [Int]) -> [Float] {
        zip(readings(images), classes).map { reading, label in reading.classProbabilities[label] }
    }

    /// Each image's soft label over the model's classes.
    public func probabilities(_ images: Tensor) -> [[Float]] { readings(images).map(\.probabilities) }

    /// Each image's most probable class, as a model class index (−1 for a class the model lacks).
    public func predictions(_ images: Tensor) -> [Int] { readings(images).map(\.prediction) }
}
