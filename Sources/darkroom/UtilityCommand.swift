import ArgumentParser
import Foundation
import Evaluation
import GAN

struct UtilityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "utility",
        abstract: "Does a class-conditional model's synthetic set help a classifier? Test accuracy of one small CNN trained on the labelled real images, on those plus the synthetic set, on the synthetic set alone, and of logistic regression on D's features.")

    @Option(help: "The training run folder (trained with --labels).")
    var model: String
    @Option(help: "latest, best, epoch-N, kimg-N, or a .safetensors path.")
    var checkpoint = "latest"
    @Option(help: "The labelled real images to train on: a path,label CSV (paths as in the run's dataset).")
    var labels: String
    @Option(help: "Held-out labelled images to test on (path,label); without it --test-fraction of --labels is held out.")
    var testLabels: String?
    @Option(help: "The prepared dataset --test-labels' paths are in (default: the run's).")
    var testData: String?
    @Option var testFraction = 0.2
    @Option(name: .customLong("set"), help: "A folder generate --per-class wrote: train on its synthetic images and their folders' classes (as an ImageFolder reader would) instead of drawing a set here; --soft-labels takes its rows' labeller_probabilities. Repeat to join several (sets from several generators).")
    var sets: [String] = []
    @Option(help: "Synthetic images per class (default 1000; not with --set).")
    var perClass: Int?
    @Option(help: "Draw per-class / (1 − FRACTION) candidates of each class and keep those --filter-by ranks first. With a labeller the default is 0.75, as generate's (0: every image as drawn).")
    var filter: Double?
    @Option(help: "What ranks --filter's candidates: head (D's classifier head) or labeller (the labeller's probability of the class asked for; the default with a labeller).")
    var filterBy: String?
    @Option(help: "Which candidates --filter keeps: surest (the highest-scored) or hardest (the lowest-scored of those scored at least 0.5, so called their class: the images near the class boundaries; the default with --filter-by labeller).")
    var filterKeep: String?
    @Option(help: "With --filter-keep hardest: the least score a kept candidate has, where enough candidates reach it (default 0.5: those the labeller calls their class).")
    var filterFloor: Double?
    @Option(help: "A classifier written by label --save-labeller (default: the one the run trained with, if any): reports how many synthetic images it calls their class and its own test accuracy; for --filter-by labeller, --relabel and --soft-labels. Repeat for an ensemble (their probabilities averaged).")
    var labeller: [String] = []
    @Flag(help: "Give each synthetic image the labeller's class instead of the one it was generated as.")
    var relabel = false
    @Flag(help: "Train on each synthetic image with the labeller's probabilities over the classes as its target (soft labels).")
    var softLabels = false
    @Option(help: "The fraction of each class's candidates drawn between it and another class (G's class row moved toward a partner the labeller confuses it with, by up to one half): images near the class boundaries. Needs a labeller; with one the default is 0.25, as generate's.")
    var classMix: Double?
    @Option(help: "Scale every latent of the drawn set by PSI before G (the truncation trick's ψ: below 1 typical images, above 1 rarer ones). Default 1, G's prior; with the labeller's filter 1.5, as generate's.")
    var psi: Float?
    @Option(help: "The fraction of each real + synthetic batch that is synthetic.")
    var syntheticShare = 0.5
    @Option(help: "The classifiers' learning rate over their steps: constant (as measured before) or cosine (decayed to 0: they settle, so a figure moves less with the seed).")
    var schedule = "constant"
    @Option(help: "Train each classifier with this many seeds and report their mean (and each seed's figure).")
    var repeats = 1
    @Option(help: "Each classifier's steps (default: the fixed recipe's, max(1,500, 20 passes over its images)); fewer for a quick look.")
    var steps: Int?
    @Option var seed: UInt64 = 0
    @Flag var json = false
    @Option(help: "Also write the report as JSON to this file.")
    var out: String?

    func validate() throws {
        if let perClass { guard perClass >= 1 else { throw ValidationError("--per-class must be at least 1") } }
        if let filter { guard filter >= 0 && filter < 1 else { throw ValidationError("--filter must be in [0, 1)") } }
        if let classMix { guard classMix >= 0 && classMix < 1 else { throw ValidationError("--class-mix must be in [0, 1)") } }
        guard syntheticShare > 0 && syntheticShare < 1 else { throw ValidationError("--synthetic-share must be in (0, 1)") }
        guard testFraction > 0 && testFraction < 1 else { throw ValidationError("--test-fraction must be in (0, 1)") }
        if testData != nil && testLabels == nil { throw ValidationError("--test-data comes with --test-labels") }
        guard DownstreamClassifier.Schedule(rawValue: schedule) != nil else { throw ValidationError("--schedule must be constant or cosine") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let filterBy, UtilityOptions.FilterBy(rawValue: filterBy) == nil { throw ValidationError("--filter-by must be head or labeller") }
        if let filterKeep, ClassFilterKeep(rawValue: filterKeep) == nil { throw ValidationError("--filter-keep must be surest or hardest") }
        if let filterFloor { guard (0..<1).contains(filterFloor) else { throw ValidationError("--filter-floor must be in [0, 1)") } }
        if let psi { guard psi > 0 && psi.isFinite else { throw ValidationError("--psi must be positive") } }
    }

    func run() throws {
        if !sets.isEmpty {
            let drawing = [("--per-class", perClass != nil), ("--filter", filter != nil), ("--filter-by", filterBy != nil), ("--filter-keep", filterKeep != nil),
                           ("--filter-floor", filterFloor != nil), ("--class-mix", classMix != nil), ("--psi", psi != nil)]
            if let (name, _) = drawing.first(where: { $0.1 }) { throw ValidationError("\(name) chooses a set drawn here; a --set was chosen by the generate that wrote it") }
        }
        let (labellers, choice) = try resolveClassSet(labellers: labeller, run: model, filter: filter,
                                                      byLabeller: filterBy.map { $0 == UtilityOptions.FilterBy.labeller.rawValue },
                                                      keep: filterKeep, classMix: classMix, psi: psi)
        if (relabel || (softLabels && sets.isEmpty)) && labellers.isEmpty {
            throw ValidationError("--relabel and --soft-labels need a labeller: --labeller, or a run trained with one")
        }
        var options = UtilityOptions()
        options.checkpoint = checkpoint
        options.perClass = perClass ?? options.perClass
        options.sets = sets
        options.filter = choice.filter ?? 0
        options.filterBy = choice.byLabeller ? .labeller : .head
        options.filterKeep = choice.keep
        options.filterFloor = try resolveFilterFloor(filterFloor, choice: choice)
        options.labellers = labellers
        options.relabel = relabel
        options.softLabels = softLabels
        options.classMix = choice.classMix
        options.psi = choice.psi
        options.syntheticShare = syntheticShare
        options.recipe.schedule = DownstreamClassifier.Schedule(rawValue: schedule)!
        options.repeats = repeats
        options.steps = steps
        options.seed = seed
        options.testLabels = testLabels
        options.testData = testData
        options.testFraction = testFraction
        let report = try Utility.run(model: model, labels: labels, options: options) { Console.note($0) }
        if let out { try Data(try Console.json(report).utf8).write(to: URL(fileURLWithPath: out), options: .atomic) }
        if json {
            print(try Console.json(report))
            return
        }
        print("test accuracy on \(report.testCount) held-out labelled real images (\(report.classes.count) classes)"
              + (report.repeats > 1 ? ", the mean of \(report.repeats) seeds [each seed]:" : ":"))
        func seeds(_ runs: [Double]?) -> String { runs.map { " [" + $0.map { String(format: "%.4f", $0) }.joined(separator: " ") + "]" } ?? "" }
        print(String(format: "  real only (%d images)            %.4f", report.realCount, report.realOnly) + seeds(report.runs?.realOnly))
        print(String(format: "  real + synthetic (%d + %d)   %.4f", report.realCount, report.syntheticCount, report.realPlusSynthetic)
              + seeds(report.runs?.realPlusSynthetic))
        print(String(format: "  synthetic only (%d images)       %.4f", report.syntheticCount, report.syntheticOnly) + seeds(report.runs?.syntheticOnly))
        print(String(format: "  logistic regression on D features  %.4f", report.discriminatorFeatures))
        print(String(format: report.lift > 0 ? "the synthetic set lifts the classifier by %.1f points" : "the synthetic set does not help: %.1f points",
                     report.lift))
        if let accuracy = report.labellerTestAccuracy {
            print(String(format: "  the labeller%@                 %.4f", ((report.labellers?.count ?? 1) > 1 ? "s' mean" : " itself") as NSString, accuracy))
        }
        if let agreement = report.labellerAgreement {
            print(String(format: "the labeller calls %.1f%% of the synthetic images the class they were generated as", agreement * 100)
                  + (report.relabelled.map { "; \($0) relabelled" } ?? ""))
        }
        print("per class (real only / real + synthetic / synthetic only):")
        for row in report.perClass {
            print(String(format: "  %-20@ %.3f  %.3f  %.3f", row.label as NSString, row.realOnly, row.realPlusSynthetic, row.syntheticOnly))
        }
    }
}
