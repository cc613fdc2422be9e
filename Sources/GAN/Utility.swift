import Evaluation
import Foundation
import Formats
import NN

/// `darkroom utility`: does a class-conditional model's synthetic set help a classifier? One fixed
/// small CNN (`DownstreamClassifier`) is trained on (a) the labelled real images alone, (b) those
/// plus the synthetic set, (c) the synthetic set alone (the Classification Accuracy Score of
/// Ravuri & Vinyals 2019), and for reference (d) logistic regression runs on the discriminator's
/// features of the labelled real images; each is tested on held-out labelled real images.
public struct UtilityOptions: Sendable {
    public var checkpoint = "latest"
    /// Folders `generate --per-class` wrote: their synthetic rows are the synthetic set, read as
    /// an ImageFolder reader would (8-bit images, each row's class), instead of drawing one from
    /// the model; the filter and class-mixing options are then theirs, not these. With
    /// `softLabels`, each row's `labeller_probabilities` is its target.
    public var sets: [String] = []
    /// Synthetic images per class.
    public var perClass = 1000
    /// Draw perClass / (1 − filter) candidates per class and keep the perClass that `filterBy`
    /// is surest of (0: keep every image drawn).
    public var filter = 0.0
    public var filterBy = FilterBy.head
    /// Which candidates `filter` keeps: the surest, or the hardest the scorer still calls their class.
    public var filterKeep = ClassFilterKeep.surest
    /// With `filterKeep` `.hardest`: the least score a kept candidate has, where enough reach it.
    public var filterFloor = ClassFilterKeep.defaultFloor
    /// Classifiers written by `label --save-labeller` (several: an ensemble, their probabilities
    /// averaged): they measure how many synthetic images are the class they were generated as, and
    /// are used by `filterBy: .labeller`, `relabel` and `softLabels`.
    public var labellers: [String] = []
    /// The one labeller, when there is one.
    public var labeller: String? {
        get { labellers.first }
        set { labellers = newValue.map { [$0] } ?? [] }
    }
    /// Each synthetic image takes the labeller's class instead of the one it was generated as.
    public var relabel = false
    /// Each synthetic image's target is the labeller's probabilities over the classes (soft
    /// labels: the labeller as a teacher, Hinton et al. 2015), not one class.
    public var softLabels = false
    /// The fraction of each class's candidates drawn between it and a partner class (`ClassMixing`;
    /// needs a labeller, whose readings choose the partners).
    public var classMix = 0.0
    /// Every latent of the drawn set scaled by this before G (`generate --psi`; 1: G's prior).
    public var psi: Float = 1
    /// The fraction of each real + synthetic batch that is synthetic.
    public var syntheticShare = 0.5
    public var seed: UInt64 = 0
    /// Held-out labelled images (`path,label`), in `testData` (default: the run's dataset); without
    /// them `testFraction` of the labelled images are held out.
    public var testLabels: String?
    public var testData: String?
    public var testFraction = 0.2
    public var recipe = DownstreamClassifier.Recipe()
    /// Each classifier is trained this many times, the i-th with `recipe.seed + i` (its
    /// initialisation and batch order), and each accuracy is their mean: one run's figure moves
    /// with the seed as much as many of the choices it would judge.
    public var repeats = 1
    /// Each classifier's steps instead of the recipe's budget (a quick look, not the fixed recipe).
    public var steps: Int?
    public init() {}

    public enum FilterBy: String, Sendable, Codable {
        /// D's auxiliary classifier head: its probability of the class asked for.
        case head
        /// The labeller's probability of the class asked for.
        case labeller
    }
}

public struct UtilityReport: Codable, Sendable {
    public var classes: [String]
    public var realCount: Int
    public var syntheticCount: Int
    public var testCount: Int
    /// Test accuracies.
    public var realOnly: Double
    public var realPlusSynthetic: Double
    public var syntheticOnly: Double
    public var discriminatorFeatures: Double
    /// What the synthetic set adds to the real images, in points of test accuracy (negative: it hurts).
    public var lift: Double { 100 * (realPlusSynthetic - realOnly) }
    public var checkpoint: String
    /// The folders the synthetic set was read from (`UtilityOptions.sets`; nil: drawn from the model).
    public var sets: [String]?
    /// How the synthetic set was chosen: `filter` of the candidates dropped by `filter_by`.
    public var filter: Double
    public var filterBy: UtilityOptions.FilterBy?
    public var filterKeep: ClassFilterKeep?
    /// With `filter_keep` hardest: the least score of a kept candidate (nil: not hardest).
    public var filterFloor: Double?
    /// With a labeller: the fraction of the synthetic set it classifies as the class each image was
    /// generated as (before any relabelling), and how many images `relabel` moved to another class.
    public var labellerAgreement: Double?
    /// With a labeller: its own test accuracy, the most its soft labels and filter can teach.
    public var labellerTestAccuracy: Double?
    /// The labellers used (more than one: an ensemble).
    public var labellers: [String]?
    public var relabelled: Int?
    /// The synthetic images were trained on with the labeller's probabilities as targets.
    public var softLabels: Bool
    /// The fraction of each class's candidates drawn between it and a partner class (nil: none),
    /// and how many of the kept synthetic images were drawn so.
    public var classMix: Double?
    public var classMixed: Int?
    /// The scale of the drawn set's latents where it was not 1 (nil: G's prior, or a `--set`).
    public var psi: Float?
    /// The synthetic fraction of each real + synthetic batch.
    public var syntheticShare: Double
    /// The classifiers' learning-rate schedule, and how many seeds each accuracy is the mean of.
    public var schedule: DownstreamClassifier.Schedule
    public var repeats: Int
    /// Each classifier's steps where `steps` replaced the fixed recipe's budget (nil: the recipe's).
    public var steps: Int?
    /// With repeats: each seed's accuracy, in seed order.
    public var runs: Runs?
    /// Each class's test accuracy (recall) under each classifier: where a synthetic set helps and
    /// where its classes are wrong.
    public var perClass: [ClassAccuracy]
    /// Which class each test image was called, by true class: what a class is mistaken for.
    public var confusion: Confusion

    /// Counts summed over the seeds: `[true class][predicted class]`, classes in `classes`' order.
    public struct Confusion: Codable, Sendable, Equatable {
        public var realOnly: [[Int]]
        public var realPlusSynthetic: [[Int]]
        public var syntheticOnly: [[Int]]
        /// With a labeller: its own calls on the test images (once: it has no seeds here).
        public var labeller: [[Int]]?

        enum CodingKeys: String, CodingKey {
            case realOnly = "real_only", realPlusSynthetic = "real_plus_synthetic", syntheticOnly = "synthetic_only", labeller
        }
    }

    public struct ClassAccuracy: Codable, Sendable, Equatable {
        public var label: String
        public var testCount: Int
        public var realOnly: Double
        public var realPlusSynthetic: Double
        public var syntheticOnly: Double

        enum CodingKeys: String, CodingKey {
            case label, testCount = "test_count", realOnly = "real_only", realPlusSynthetic = "real_plus_synthetic", syntheticOnly = "synthetic_only"
        }
    }

    public struct Runs: Codable, Sendable, Equatable {
        public var realOnly: [Double]
        public var realPlusSynthetic: [Double]
        public var syntheticOnly: [Double]

        enum CodingKeys: String, CodingKey {
            case realOnly = "real_only", realPlusSynthetic = "real_plus_synthetic", syntheticOnly = "synthetic_only"
        }
    }

    enum CodingKeys: String, CodingKey {
        case classes, realCount = "real_count", syntheticCount = "synthetic_count", testCount = "test_count"
        case realOnly = "real_only", realPlusSynthetic = "real_plus_synthetic", syntheticOnly = "synthetic_only"
        case discriminatorFeatures = "discriminator_features", checkpoint, sets, perClass = "per_class"
        case filter, filterBy = "filter_by", filterKeep = "filter_keep", filterFloor = "filter_floor", labellerAgreement = "labeller_agreement", relabelled, softLabels = "soft_labels", classMix = "class_mix", classMixed = "class_mixed", psi, syntheticShare = "synthetic_share"
        case labellerTestAccuracy = "labeller_test_accuracy", labellers, schedule, repeats, steps, runs, confusion
    }
}

public enum Utility {
    public static func run(model: String, labels: String, options: UtilityOptions = UtilityOptions(),
                           progress: (String) -> Void = { _ in }) throws -> UtilityReport {
        precondition(options.repeats >= 1, "at least one seed per classifier")
        let generator = try TrainedGenerator(run: model, checkpoint: options.checkpoint)
        let configuration = generator.configuration
        guard configuration.isConditional else { throw GenerationError.notConditional(path: generator.checkpointPath) }
        let classes = configuration.classes, sample = configuration.channels * configuration.imageSize * configuration.imageSize
        let dataset = try TrainedGenerator.trainingData(run: model)

        func labelled(_ labelsPath: String, in data: String) throws -> LabelledImages {
            let (rowClasses, _) = try LabelFile(path: labelsPath).datasetLabels(data, classes: classes)
            return try LabelledImages(dataset: data, rowClasses: rowClasses, perBatch: 0, seed: options.seed)
        }
        let known = try labelled(labels, in: dataset)
        var train = (images: known.images, classes: known.classes), test: (images: [Float], classes: [Int])
        if let testLabels = options.testLabels {
            let held = try labelled(testLabels, in: options.testData ?? dataset)
            test = (held.images, held.classes)
        } else {
            var random = SeededRandom(seed: options.seed &+ 0x7E57)
            let order = random.permutation(known.count), testCount = max(1, Int(Double(known.count) * options.testFraction))
            func gather(_ indices: ArraySlice<Int>) -> (images: [Float], classes: [Int]) {
                (indices.flatMap { known.images[$0 * sample..<($0 + 1) * sample] }, indices.map { known.classes[$0] })
            }
            test = gather(order.prefix(testCount))
            train = gather(order.dropFirst(testCount))
        }

        let labeller = try LabellerScorer.load(options.labellers, for: configuration)
        // A read set brings its own soft labels, filter and mixing.
        let drawsWithLabeller = options.sets.isEmpty && (options.softLabels || options.filterBy == .labeller || options.classMix > 0)
        if options.relabel || drawsWithLabeller {
            guard labeller != nil else {
                throw LabelError.unreadable(path: model, reason: "relabelling, soft labels, class mixing or filtering by the labeller need a labeller (label --save-labeller)")
            }
        }
        let synthetic: SyntheticTrainingSet, scorer: ClassScorer?, mixing: ClassMixing?
        if options.sets.isEmpty {
            (synthetic, scorer, mixing) = try draw(generator, model: model, labeller: labeller, options: options, progress: progress)
        } else {
            synthetic = try read(options.sets, configuration: configuration, labeller: labeller, options: options, progress: progress)
            (scorer, mixing) = (nil, nil)
        }

        var budgeted = options.recipe
        if let steps = options.steps { (budgeted.minimumSteps, budgeted.epochs) = (steps, 0) }
        /// The test predictions of the classifier trained on `images`, once per seed.
        func predictions(_ name: String, images: [Float], labels: [Int], targets: [Float]? = nil,
                         mixedWith other: (images: [Float], labels: [Int])? = nil, mixedTargets: [Float]? = nil) -> [[Int]] {
            (0..<options.repeats).map { run in
                progress("training the classifier on \(name)" + (options.repeats > 1 ? " (seed \(run + 1) of \(options.repeats))" : ""))
                var recipe = budgeted
                recipe.seed = recipe.seed &+ UInt64(run)
                let classifier = DownstreamClassifier(imageSize: configuration.imageSize, channels: configuration.channels, classes: classes.count,
                                                      recipe: recipe)
                classifier.train(images: images, labels: labels, targets: targets, mixedWith: other, mixedTargets: mixedTargets, share: options.syntheticShare)
                return classifier.predict(test.images)
            }
        }
        /// The fraction of the test images called right.
        func accuracy(_ predicted: [Int]) -> Double {
            Double(zip(predicted, test.classes).filter { $0 == $1 }.count) / Double(max(test.classes.count, 1))
        }
        /// The same, the seeds' mean.
        func accuracy(_ runs: [[Int]]) -> Double { runs.reduce(0) { $0 + accuracy($1) } / Double(runs.count) }
        /// [true class][predicted class] counts, summed over the seeds.
        func confusion(_ runs: [[Int]]) -> [[Int]] {
            var counts = [[Int]](repeating: [Int](repeating: 0, count: classes.count), count: classes.count)
            for predicted in runs { for (truth, call) in zip(test.classes, predicted) { counts[truth][call] += 1 } }
            return counts
        }
        let realOnly = predictions("the \(train.classes.count) labelled real images", images: train.images, labels: train.classes)
        let realPlusSynthetic = predictions("real + synthetic (\(Int(options.syntheticShare * 100))% of each batch synthetic)", images: train.images,
                                            labels: train.classes, mixedWith: (synthetic.images, synthetic.classes),
                                            mixedTargets: options.softLabels ? synthetic.targets : nil)
        let syntheticOnly = predictions("the \(synthetic.count) synthetic images", images: synthetic.images, labels: synthetic.classes,
                                        targets: options.softLabels ? synthetic.targets : nil)
        var confusions = UtilityReport.Confusion(realOnly: confusion(realOnly), realPlusSynthetic: confusion(realPlusSynthetic),
                                                 syntheticOnly: confusion(syntheticOnly))
        /// A class's accuracy (recall) over the seeds: its diagonal count over its row's.
        func recall(_ counts: [[Int]], _ label: Int) -> Double { Double(counts[label][label]) / Double(max(counts[label].reduce(0, +), 1)) }
        let perClass = classes.indices.map { label in
            UtilityReport.ClassAccuracy(label: classes[label], testCount: test.classes.filter { $0 == label }.count,
                                        realOnly: recall(confusions.realOnly, label), realPlusSynthetic: recall(confusions.realPlusSynthetic, label),
                                        syntheticOnly: recall(confusions.syntheticOnly, label))
        }

        let labellerCalls = labeller.map { $0.readings(of: test.images).map(\.prediction) }
        let labellerTestAccuracy = labellerCalls.map { accuracy($0) }
        confusions.labeller = labellerCalls.map { confusion([$0]) }

        progress("logistic regression on the discriminator's features")
        let extractor = try FeatureExtractor(run: model, checkpoint: options.checkpoint)
        func features(_ images: [Float]) -> [Float] {
            var out: [Float] = []
            for start in stride(from: 0, to: images.count / sample, by: 256) {
                let n = min(256, images.count / sample - start)
                out += extractor.features(Tensor(shape: [n, configuration.channels, configuration.imageSize, configuration.imageSize],
                                                 values: Array(images[start * sample..<(start + n) * sample])))
            }
            return out
        }
        let regression = LogisticRegression.fit(features: features(train.images), labels: train.classes, classes: classes.count)
        let featureAccuracy = accuracy(regression.predict(features(test.images)))

        return UtilityReport(classes: classes, realCount: train.classes.count, syntheticCount: synthetic.count, testCount: test.classes.count,
                             realOnly: accuracy(realOnly), realPlusSynthetic: accuracy(realPlusSynthetic), syntheticOnly: accuracy(syntheticOnly),
                             discriminatorFeatures: featureAccuracy, checkpoint: generator.checkpointPath, sets: options.sets.isEmpty ? nil : options.sets,
                             filter: options.sets.isEmpty ? options.filter : 0, filterBy: scorer == nil ? nil : options.filterBy, filterKeep: scorer == nil ? nil : options.filterKeep,
                             filterFloor: scorer != nil && options.filterKeep == .hardest ? options.filterFloor : nil,
                             labellerAgreement: labeller == nil ? nil : Double(synthetic.agreeing) / Double(max(synthetic.considered, 1)),
                             labellerTestAccuracy: labellerTestAccuracy, labellers: labeller == nil ? nil : options.labellers,
                             relabelled: options.relabel ? synthetic.relabelled : nil, softLabels: options.softLabels,
                             classMix: mixing?.fraction, classMixed: mixing == nil ? nil : synthetic.mixed,
                             psi: options.sets.isEmpty && options.psi != 1 ? options.psi : nil, syntheticShare: options.syntheticShare,
                             schedule: options.recipe.schedule, repeats: options.repeats, steps: options.steps,
                             runs: options.repeats > 1 ? UtilityReport.Runs(realOnly: realOnly.map { accuracy($0) }, realPlusSynthetic: realPlusSynthetic.map { accuracy($0) },
                                                                            syntheticOnly: syntheticOnly.map { accuracy($0) }) : nil,
                             perClass: perClass, confusion: confusions)
    }

    /// Draws the synthetic set from the model: `perClass` of every class, filtered and mixed as
    /// `options` say; also the filter's scorer and the class mixing, where they were used.
    private static func draw(_ generator: TrainedGenerator, model: String, labeller: LabellerScorer?, options: UtilityOptions,
                             progress: (String) -> Void) throws -> (SyntheticTrainingSet, ClassScorer?, ClassMixing?) {
        let classes = generator.configuration.classes
        let sample = generator.configuration.channels * generator.configuration.imageSize * generator.configuration.imageSize
        let mixing = options.classMix > 0 ? ClassMixing(fraction: options.classMix) : nil
        let candidates = options.filter > 0 ? Int((Double(options.perClass) / (1 - options.filter)).rounded(.up)) : options.perClass
        var scorer: ClassScorer?
        if candidates > options.perClass {
            scorer = options.filterBy == .labeller ? labeller : try ClassConfidence(run: model, checkpoint: options.checkpoint)
        }
        progress("generating \(options.perClass) images per class" + (scorer.map { " (the \(options.perClass) of \(candidates) the \($0.name) is \(options.filterKeep == .surest ? "surest of" : "least sure of among those it scores at least \(options.filterFloor)"))" } ?? ""))
        var set = SyntheticTrainingSet()
        for label in classes.indices {
            var images: [Float] = [], sureness: [Float] = [], predicted: [Int] = [], soft: [[Float]] = []
            func draw(_ range: Range<Int>, mixes: [ClassMix?]?) {
                for start in stride(from: range.lowerBound, to: range.upperBound, by: 256) {
                    let indices = start..<min(start + 256, range.upperBound)
                    let latents = indices.flatMap { generator.latent(seed: options.seed, index: label * candidates + $0, psi: options.psi) }
                    let batch = generator.images(latents: latents, classes: indices.map { _ in label }, mixes: mixes.map { Array($0[indices]) })
                    images += batch.values
                    // The labeller reads each batch once, for its filter score, prediction and soft label.
                    let readings = labeller?.readings(batch) ?? []
                    if let scorer {
                        sureness += scorer === labeller ? readings.map { $0.classProbabilities[label] }
                            : scorer.scores(batch, classes: indices.map { _ in label })
                    }
                    predicted += readings.map(\.prediction)
                    soft += readings.map(\.probabilities)
                }
            }
            let plain = candidates - (mixing?.mixedCount(of: candidates) ?? 0)
            draw(0..<plain, mixes: nil)
            if let mixing {
                // The partners come from the labeller's reading of the class's unmixed candidates.
                let partners = ClassMixing.partnerWeights(soft, label: label, classes: classes.count)
                draw(plain..<candidates, mixes: mixing.mixes(label: label, candidates: candidates, partnerWeights: partners, seed: options.seed))
            }
            let kept = scorer == nil ? Array(0..<candidates) : options.filterKeep.choose(sureness, count: options.perClass, floor: options.filterFloor)
            set.mixed += kept.filter { $0 >= plain }.count
            for index in kept {
                set.add(images[index * sample..<(index + 1) * sample], label: label, prediction: labeller == nil ? nil : predicted[index],
                        target: options.softLabels ? soft[index] : nil, relabel: options.relabel)
            }
        }
        return (set, scorer, mixing)
    }

    /// Reads the synthetic set from `generate --per-class` folders (`options.sets`).
    private static func read(_ folders: [String], configuration: DCGANConfiguration, labeller: LabellerScorer?, options: UtilityOptions,
                             progress: (String) -> Void) throws -> SyntheticTrainingSet {
        progress("reading the synthetic set from \(folders.joined(separator: ", "))")
        let exported = try ExportedClassSet.read(folders, classes: configuration.classes, size: configuration.imageSize, channels: configuration.channels)
        if options.softLabels, exported.probabilities.contains(where: { $0 == nil }) {
            throw LabelError.unreadable(path: folders.joined(separator: ", "),
                                        reason: "soft labels need every synthetic row's labeller_probabilities (generate --per-class with a labeller writes them)")
        }
        let sample = configuration.channels * configuration.imageSize * configuration.imageSize
        let predicted = labeller.map { $0.readings(of: exported.images).map(\.prediction) }
        var set = SyntheticTrainingSet()
        for index in 0..<exported.count {
            set.add(exported.images[index * sample..<(index + 1) * sample], label: exported.classes[index], prediction: predicted?[index],
                    target: options.softLabels ? exported.probabilities[index] : nil, relabel: options.relabel)
        }
        return set
    }
}

/// The synthetic images the classifiers train on, [N, C, S, S] plain in [-1, 1], their classes and
/// (with soft labels) their targets [N, K]; and what the labeller made of them.
struct SyntheticTrainingSet {
    var images: [Float] = [], classes: [Int] = [], targets: [Float] = []
    /// Images offered, how many of them the labeller calls the class they were made as, how many
    /// `relabel` moved, and how many were drawn between classes.
    var considered = 0, agreeing = 0, relabelled = 0, mixed = 0

    var count: Int { classes.count }

    /// One image made as class `label`; `prediction` is the labeller's class for it (nil: no labeller).
    mutating func add(_ image: ArraySlice<Float>, label: Int, prediction: Int?, target: [Float]?, relabel: Bool) {
        considered += 1
        let agrees = prediction.map { $0 == label } ?? true
        if agrees { agreeing += 1 }
        let newLabel = relabel && !agrees ? prediction! : label
        // A class the model lacks cannot be a training target: such an image is dropped.
        if newLabel < 0 { return }
        images += image
        classes.append(newLabel)
        if let target { targets += target }
        if newLabel != label { relabelled += 1 }
    }
}
