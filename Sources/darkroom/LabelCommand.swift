import ArgumentParser
import Evaluation
import Foundation
import GAN

struct LabelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Labels a prepared dataset's unlabelled images from a few labelled ones (FixMatch on a small CNN), writing a labels CSV for train --labels.")

    @Option(help: "The prepared dataset.")
    var data: String
    @Option(help: "The labelled images: a path,label CSV (paths as in the dataset's index.csv).")
    var labels: String
    @Option(help: "The labels CSV to write: path,label,confidence,source (label: given; pseudo: predicted).")
    var out: String
    @Option(help: "Write an unlabelled image's predicted class only where the labeller's probability reaches this (0: every image).")
    var keep: Float = 0
    @Option(help: "FixMatch's steps (each: 64 labelled and 64 × --unlabelled-ratio unlabelled images).")
    var steps = 6000
    @Option(help: "Unlabelled images per labelled image in a step (FixMatch's μ; its paper uses 7).")
    var unlabelledRatio = 2
    @Option(help: "FixMatch's confidence threshold for its own targets.")
    var threshold: Float = 0.95
    @Option(help: "fixed: --threshold for every class; flexmatch: each class's threshold scaled by how far it has been learned (FlexMatch).")
    var thresholds = "fixed"
    @Option(help: "The labeller CNN's first layer's channels (doubled at each of its downsamplings).")
    var width = 32
    @Option(help: "Extra 3×3 convolution layers (with BatchNorm) at each of the labeller CNN's resolutions (0: the utility CNN).")
    var depth = 0
    @Option(help: "The fraction of the labelled images held out to measure the labeller (0: train on every label; measure with --test-labels).")
    var validationFraction = 0.1
    @Option(help: "Held-out labelled images to also measure the labeller on (path,label).")
    var testLabels: String?
    @Option(help: "The prepared dataset --test-labels' paths are in (default: --data).")
    var testData: String?
    @Option(help: "Also save the labeller (safetensors) here, for generate / utility --filter-by labeller.")
    var saveLabeller: String?
    @Option(help: "Also list this many unlabelled images most worth labelling next (the labeller's smallest margin between its two likeliest classes) in --suggest-out.")
    var suggest = 0
    @Option(help: "Where --suggest writes them, a CSV: path, an empty label to fill in (then add the rows to --labels), the likeliest class and its probability, the second and its, the margin.")
    var suggestOut: String?
    @Option(help: "none, or estimated: align FixMatch's targets to the unlabelled images' class shares as the labels-only CNN estimates them (ReMixMatch's distribution alignment), for labels not drawn in the folder's proportions.")
    var align = "none"
    @Option(help: "FixMatch's strong view between its shift and cutout: basic (contrast and brightness) or randaugment (two of FixMatch's RandAugment operations: rotation, shear, translation, solarize, equalize, …).")
    var strong = "basic"
    @Option(help: "Moves the held-out split and the CNNs' initialisation and batches.")
    var seed: UInt64 = 0
    @Flag var json = false

    func validate() throws {
        guard keep >= 0 && keep <= 1 else { throw ValidationError("--keep must be in [0, 1]") }
        guard threshold > 0 && threshold <= 1 else { throw ValidationError("--threshold must be in (0, 1]") }
        guard width >= 1 else { throw ValidationError("--width must be at least 1") }
        guard FixMatchRecipe.Thresholds(rawValue: thresholds) != nil else { throw ValidationError("--thresholds must be fixed or flexmatch") }
        guard PseudoLabelOptions.Alignment(rawValue: align) != nil else { throw ValidationError("--align must be none or estimated") }
        guard FixMatchRecipe.StrongView(rawValue: strong) != nil else { throw ValidationError("--strong must be basic or randaugment") }
        guard depth >= 0 else { throw ValidationError("--depth must be at least 0") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard unlabelledRatio >= 1 else { throw ValidationError("--unlabelled-ratio must be at least 1") }
        guard validationFraction >= 0 && validationFraction < 1 else { throw ValidationError("--validation-fraction must be in [0, 1)") }
        if testData != nil && testLabels == nil { throw ValidationError("--test-data comes with --test-labels") }
        guard suggest >= 0 else { throw ValidationError("--suggest must be at least 0") }
        if (suggest > 0) != (suggestOut != nil) { throw ValidationError("--suggest N and --suggest-out FILE come together") }
    }

    func run() throws {
        var options = PseudoLabelOptions()
        options.fixMatch.steps = steps
        options.fixMatch.unlabelledRatio = unlabelledRatio
        options.fixMatch.threshold = threshold
        options.fixMatch.thresholds = FixMatchRecipe.Thresholds(rawValue: thresholds)!
        options.fixMatch.strong = FixMatchRecipe.StrongView(rawValue: strong)!
        options.recipe.width = width
        options.recipe.depth = depth
        options.keep = keep
        options.validationFraction = validationFraction
        options.testLabels = testLabels
        options.testData = testData
        options.seed = seed
        options.alignment = PseudoLabelOptions.Alignment(rawValue: align)!
        options.saveLabeller = saveLabeller
        options.suggest = suggest
        options.suggestOut = suggestOut
        let report = try PseudoLabelling.run(data: data, labels: labels, out: out, options: options) { Console.note($0) }
        if let warning = report.warning { Console.note(warning) }
        if json {
            print(try Console.json(report))
            return
        }
        print("\(report.labelled) labelled, \(report.pseudoLabelled) of \(report.unlabelled) unlabelled images labelled → \(report.out)")
        if let accuracy = report.validationAccuracy, let supervised = report.supervisedValidationAccuracy {
            print(String(format: "held-out labelled images (%d): FixMatch %.4f, labelled images alone %.4f", report.validationCount, accuracy, supervised))
        }
        if let count = report.testCount, let accuracy = report.testAccuracy, let supervised = report.supervisedTestAccuracy {
            print(String(format: "test images (%d): FixMatch %.4f, labelled images alone %.4f", count, accuracy, supervised))
        }
        let shares = { (shares: [String: Double]) in report.classes.map { String(format: "%@ %.0f%%", $0, 100 * shares[$0]!) }.joined(separator: ", ") }
        print("class shares: the labels \(shares(report.labelShares)); the unlabelled images, estimated, \(shares(report.estimatedShares))")
        if let saveLabeller { print("labeller → \(saveLabeller)") }
        if let path = report.suggestOut { print("\(report.suggested) images to label next, the labeller's least sure first → \(path)") }
    }
}
