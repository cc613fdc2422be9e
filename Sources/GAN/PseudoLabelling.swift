import Dataset
import Evaluation
import Foundation
import Formats

/// `darkroom label`: labels a prepared dataset's unlabelled images from a few labelled ones, with
/// the downstream CNN trained by FixMatch on all of them. The output is a labels CSV for
/// `train --labels`: a class-conditional GAN then learns its classes from every image, not only
/// from the labelled ones (S3GAN's recipe, Lucic et al. 2019: a semi-supervised classifier labels
/// the real data, the conditional GAN trains on its labels).
public struct PseudoLabelOptions: Sendable {
    public var fixMatch = FixMatchRecipe()
    public var recipe = DownstreamClassifier.Recipe()
    /// The labelled images held out to measure the labeller (never trained on); 0 trains on every
    /// label (measure on `testLabels` then).
    public var validationFraction = 0.1
    /// An unlabelled image is written with its predicted class when the labeller's probability for
    /// it reaches this (0: every image).
    public var keep: Float = 0
    /// Held-out labelled images to also measure the labeller on (`path,label`), in `testData`.
    public var testLabels: String?
    public var testData: String?
    /// Moves the validation split and the CNNs' initialisation and batches (0: the recipe's own).
    public var seed: UInt64 = 0
    /// Also save the labeller here (`Labeller`), for `generate`/`utility --filter-by labeller`.
    public var saveLabeller: String?
    /// Write the `suggest` unlabelled images most worth labelling next here (`suggestions`).
    public var suggestOut: String?
    public var suggest = 0
    /// `estimated`: FixMatch's targets aligned to the unlabelled images' class shares as the
    /// labels-only CNN estimates them (`ClassPrior.estimate`), for labels not drawn in the folder's
    /// proportions (20 of each class of a folder that holds 25 times more of one).
    public var alignment = Alignment.none
    public init() {}

    public enum Alignment: String, Sendable, Codable, CaseIterable {
        case none, estimated
    }
}

public struct PseudoLabelReport: Codable, Sendable {
    public var classes: [String]
    public var labelled: Int
    /// The labelled images the labeller trained on: all but the validation ones.
    public var trainedOn: Int
    public var unlabelled: Int
    /// Unlabelled images written with a predicted label (confidence at least `keep`).
    public var pseudoLabelled: Int
    public var keep: Float
    /// Accuracy on the held-out labelled images: FixMatch's classifier and the same CNN trained on
    /// the labelled images alone, side by side (none held out: nil).
    public var validationCount: Int
    public var validationAccuracy: Double?
    public var supervisedValidationAccuracy: Double?
    /// The same on `testLabels`, when given.
    public var testCount: Int?
    public var testAccuracy: Double?
    public var supervisedTestAccuracy: Double?
    /// Each written pseudo-label's class: how many.
    public var perClass: [String: Int]
    public var out: String
    /// Where the labeller was saved.
    public var labeller: String?
    /// The images suggested for labelling next, and where they were written.
    public var suggested: Int
    public var suggestOut: String?
    /// Set where the held-out labels (the test ones when given, else the validation ones) find the
    /// labeller below the same CNN trained on the labelled images alone. FixMatch can lose to that
    /// baseline: where the unlabelled images hold other classes (Oliver et al. 2018), and on
    /// README's icon folder, whose classes differ by meaning more than by look. Its labels then
    /// teach `train` less than the given ones.
    public var warning: String?
    /// The classes' shares among the labels trained on, and among the unlabelled images as the
    /// labels-only CNN's probabilities estimate them (EM, Saerens et al. 2002).
    public var labelShares: [String: Double]
    public var estimatedShares: [String: Double]
    public var alignment: PseudoLabelOptions.Alignment

    enum CodingKeys: String, CodingKey {
        case classes, labelled, trainedOn = "trained_on", unlabelled, pseudoLabelled = "pseudo_labelled", keep
        case validationCount = "validation_count", validationAccuracy = "validation_accuracy", supervisedValidationAccuracy = "supervised_validation_accuracy"
        case testCount = "test_count", testAccuracy = "test_accuracy", supervisedTestAccuracy = "supervised_test_accuracy"
        case perClass = "per_class", out, labeller, suggested, suggestOut = "suggest_out", warning
        case labelShares = "label_shares", estimatedShares = "estimated_shares", alignment
    }

    static func warning(heldOut: String, count: Int, labeller: Double, labelsAlone: Double) -> String? {
        guard labeller < labelsAlone else { return nil }
        return String(format: "warning: on the %d %@ the labeller is below the same CNN trained on the labelled images alone " +
                      "(%.1f%% against %.1f%%): its labels may mislead train --labeller; train --labels with the given labels alone, " +
                      "or label more (--suggest)", count, heldOut, labeller * 100, labelsAlone * 100)
    }
}

public enum PseudoLabelling {
    /// Writes `out` (`path,label,confidence,source`; source `label` for the given labels, kept as
    /// they are, `pseudo` for the labeller's), atomically.
    public static func run(data: String, labels: String, out: String, options: PseudoLabelOptions = PseudoLabelOptions(),
                           progress: (String) -> Void = { _ in }) throws -> PseudoLabelReport {
        // Before minutes of training, not after.
        for path in [out] + [options.saveLabeller, options.suggestOut].compactMap({ $0 }) {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw LabelError.unreadable(path: path, reason: "cannot write: no folder \(folder)")
            }
        }
        let labelFile = try LabelFile(path: labels)
        let (rowClasses, classes) = try labelFile.datasetLabels(data)
        let index = try DatasetIndex.read(data)
        let all = try LabelledImages(dataset: data, rowClasses: rowClasses.map { _ in 0 }, perBatch: 0, seed: 0)
        let manifest = try DatasetManifest.load(from: data)
        let sample = all.sampleLength
        func gather(_ rows: [Int]) -> [Float] { rows.flatMap { all.images[$0 * sample..<($0 + 1) * sample] } }

        let labelledRows = rowClasses.indices.filter { rowClasses[$0] >= 0 }
        let unlabelledRows = rowClasses.indices.filter { rowClasses[$0] < 0 }
        guard !unlabelledRows.isEmpty else {
            throw LabelError.unreadable(path: labels, reason: "labels every image of \(data): label has no unlabelled images to label")
        }
        var random = SeededRandom(seed: options.seed &+ 0x1ABE)
        let order = random.permutation(labelledRows.count)
        let validationCount = options.validationFraction > 0 ? max(1, Int(Double(labelledRows.count) * options.validationFraction)) : 0
        let validationRows = order.prefix(validationCount).map { labelledRows[$0] }
        let trainRows = order.dropFirst(validationCount).map { labelledRows[$0] }
        let trainImages = gather(trainRows), trainClasses = trainRows.map { rowClasses[$0] }
        let validation = validationRows.isEmpty ? nil : (images: gather(validationRows), classes: validationRows.map { rowClasses[$0] })
        let test: (images: [Float], classes: [Int])? = try options.testLabels.map { testLabels in
            let testData = options.testData ?? data
            let (testRows, _) = try LabelFile(path: testLabels).datasetLabels(testData, classes: classes)
            let held = try LabelledImages(dataset: testData, rowClasses: testRows, perBatch: 0, seed: 0)
            return (held.images, held.classes)
        }

        var recipe = options.recipe
        recipe.seed &+= options.seed
        func make() -> DownstreamClassifier {
            DownstreamClassifier(imageSize: manifest.size, channels: manifest.channels, classes: classes.count, recipe: recipe)
        }
        progress("the same CNN on the \(trainRows.count) labelled images alone, for reference")
        let supervised = make()
        supervised.train(images: trainImages, labels: trainClasses)
        let unlabelledImages = gather(unlabelledRows)
        let labelShares = ClassPrior.frequencies(trainClasses, classes: classes.count)
        let estimatedShares = ClassPrior.estimate(supervised.probabilities(unlabelledImages), trainedOn: labelShares)
        progress("FixMatch on \(trainRows.count) labelled and \(unlabelledRows.count) unlabelled images, \(options.fixMatch.steps) steps")
        let labeller = make()
        var fixMatch = options.fixMatch
        if options.alignment == .estimated { fixMatch.alignment = estimatedShares.map(Float.init) }
        labeller.trainSemiSupervised(images: trainImages, labels: trainClasses, unlabelled: unlabelledImages, fixMatch: fixMatch) { step, confident in
            if (step + 1) % 500 == 0 { progress(String(format: "step %d: %.0f%% of the unlabelled batch over the threshold", step + 1, confident * 100)) }
        }

        let probabilities = labeller.probabilities(unlabelledImages)
        var text = CSV.row(["path", "label", "confidence", "source"])
        for row in labelledRows { text += CSV.row([index[row]!.path, classes[rowClasses[row]], "1", "label"]) }
        var perClass: [String: Int] = [:], written = 0
        for (row, p) in zip(unlabelledRows, probabilities) {
            let best = p.indices.max { p[$0] < p[$1] }!
            guard p[best] >= options.keep, let path = index[row]?.path else { continue }
            text += CSV.row([path, classes[best], String(format: "%.4f", p[best]), "pseudo"])
            perClass[classes[best], default: 0] += 1
            written += 1
        }
        try write(text, to: out)
        if let path = options.saveLabeller { try Labeller(classifier: labeller, classes: classes).write(to: path) }
        var suggested = 0
        if let path = options.suggestOut {
            let chosen = suggestions(probabilities, count: options.suggest)
            var text = CSV.row(["path", "label", "predicted", "probability", "second", "second_probability", "margin"])
            for i in chosen {
                guard let image = index[unlabelledRows[i]]?.path else { continue }
                let p = probabilities[i], (best, second) = twoLikeliest(p)
                text += CSV.row([image, "", classes[best], String(format: "%.4f", p[best]),
                                 classes[second], String(format: "%.4f", p[second]), String(format: "%.4f", p[best] - p[second])])
                suggested += 1
            }
            try write(text, to: path)
        }
        let validationAccuracy = validation.map { labeller.accuracy(images: $0.images, labels: $0.classes) }
        let supervisedValidationAccuracy = validation.map { supervised.accuracy(images: $0.images, labels: $0.classes) }
        let testAccuracy = test.map { labeller.accuracy(images: $0.images, labels: $0.classes) }
        let supervisedTestAccuracy = test.map { supervised.accuracy(images: $0.images, labels: $0.classes) }
        let warning: String?
        if let test, let testAccuracy, let supervisedTestAccuracy {
            warning = PseudoLabelReport.warning(heldOut: "test images", count: test.classes.count, labeller: testAccuracy, labelsAlone: supervisedTestAccuracy)
        } else if let validationAccuracy, let supervisedValidationAccuracy {
            warning = PseudoLabelReport.warning(heldOut: "held-out labelled images", count: validationCount,
                                                labeller: validationAccuracy, labelsAlone: supervisedValidationAccuracy)
        } else {
            warning = nil
        }
        return PseudoLabelReport(
            classes: classes, labelled: labelledRows.count, trainedOn: trainRows.count, unlabelled: unlabelledRows.count, pseudoLabelled: written, keep: options.keep,
            validationCount: validationCount, validationAccuracy: validationAccuracy, supervisedValidationAccuracy: supervisedValidationAccuracy,
            testCount: test?.classes.count, testAccuracy: testAccuracy, supervisedTestAccuracy: supervisedTestAccuracy, perClass: perClass, out: out,
            labeller: options.saveLabeller, suggested: suggested, suggestOut: options.suggestOut, warning: warning,
            labelShares: Dictionary(uniqueKeysWithValues: zip(classes, labelShares)),
            estimatedShares: Dictionary(uniqueKeysWithValues: zip(classes, estimatedShares)), alignment: options.alignment)
    }

    /// The `count` images whose labels would teach the labeller most, most useful first: margin
    /// sampling (Scheffer et al. 2001), the smallest gap between an image's two likeliest classes.
    /// The simplest uncertainty sampler, and in wide comparisons among the hardest to beat.
    public static func suggestions(_ probabilities: [[Float]], count: Int) -> [Int] {
        let margins = probabilities.map { p in
            let (best, second) = twoLikeliest(p)
            return p[best] - p[second]
        }
        return Array(margins.indices.sorted { (margins[$0], $0) < (margins[$1], $1) }.prefix(max(0, count)))
    }

    static func twoLikeliest(_ p: [Float]) -> (best: Int, second: Int) {
        let order = p.indices.sorted { (p[$0], -$0) > (p[$1], -$1) }
        return (order[0], order[1])
    }

    static func write(_ text: String, to path: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw LabelError.unreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
