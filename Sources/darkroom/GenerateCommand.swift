import ArgumentParser
import Foundation
import GAN
import Imaging
import NN

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write synthetic images (+ metadata.jsonl, latents.npy) from a trained model, an augmentation set, or a latent walk grid.")

    @Option(help: "The training run folder.")
    var model: String
    @Option(help: "latest, best (lowest fd in training), epoch-N, kimg-N, or a .safetensors path.")
    var checkpoint = "latest"
    @Option(help: "Synthetic images to write.")
    var count: Int?
    @Option(help: "A class-conditional model (train --labels): this many images of every class, in DIR/images/<label>/ (ImageFolder layout), with each label and D's confidence in metadata.jsonl.")
    var perClass: Int?
    @Option(help: "With --per-class and --augment: which of the dataset's images are labelled (path,label; default: the labels the run trained with).")
    var labels: String?
    @Option(help: "Output folder (or, with --interpolate, the grid's PNG path).")
    var out: String
    @Option(help: "png or jpg.")
    var format = "png"
    @Option(help: "JPEG quality.")
    var quality = 95
    @Option var seed: UInt64 = 0
    @OptionGroup var precision: PrecisionOption
    @Option var batch = 256
    @Flag(help: "Use the trained generator even when the run kept a moving average.")
    var noEma = false
    @Flag(help: "Write into a non-empty output folder.")
    var overwrite = false
    @Option(help: "A prepared dataset to mix with: its images are written too, with --ratio synthetic images per real one.")
    var augment: String?
    @Option(help: "Synthetic images per real image with --augment (default 1). With --per-class N: at most N/R labelled real images of each class (default: all).")
    var ratio: Double?
    @Option(help: "Write a grid of this many latent-space walks to --out (a PNG path) instead.")
    var interpolate: Int?
    @Option(help: "Draw count / (1 − FRACTION) candidates and drop the FRACTION scored most fake (each kept image's score goes in metadata.jsonl). With --per-class and a labeller the default is 0.75 (0: every image as drawn).")
    var filter: Double?
    @Option(help: "What scores candidates for --filter: two-sample (a fresh real-vs-synthetic classifier; measured better), discriminator (the run's D), or labeller (with --per-class: the labeller's probability of the class asked for; the default with a labeller).")
    var filterBy: String?
    @Option(help: "With --per-class --filter-by labeller: which candidates --filter keeps, surest (the highest probability of their class) or hardest (the lowest of those the labeller calls their class; the default).")
    var filterKeep: String?
    @Option(help: "With --filter-keep hardest: the least labeller probability of its class a kept candidate has, where enough candidates reach it (default 0.5: those the labeller calls their class). Higher keeps fewer doubtful images, for readers of the folders' hard labels.")
    var filterFloor: Double?
    @Option(help: "With --per-class: a classifier written by label --save-labeller (default: the one the run trained with, if any); each row gets its labeller_probabilities (soft labels), and --filter-by labeller can use it. Repeat for an ensemble (their probabilities averaged).")
    var labeller: [String] = []
    @Option(help: "With --per-class and a labeller: the fraction of each class's candidates drawn between it and another class (G's class row moved toward a partner the labeller confuses it with, by up to one half): images near the class boundaries; rows say mixed_with and mix_weight. Default 0.25 (0: none).")
    var classMix: Double?
    @Option(help: "Scale every latent by PSI before G (the truncation trick's ψ: below 1 typical images, above 1 rarer ones; rows record it). Default 1, G's prior; with --per-class and the labeller's filter 1.5.")
    var psi: Float?
    @Option(help: "With --filter-by two-sample: the prepared dataset it learns real images from (default: the run's).")
    var data: String?

    func validate() throws {
        guard format == "png" || format == "jpg" else { throw ValidationError("--format must be png or jpg") }
        guard (1...100).contains(quality), batch >= 1, (ratio ?? 1) > 0 else { throw ValidationError("--quality must be 1-100, --batch and --ratio positive") }
        if let perClass {
            guard perClass >= 1 else { throw ValidationError("--per-class must be at least 1") }
            guard count == nil, interpolate == nil else { throw ValidationError("--per-class takes no --count or --interpolate") }
        } else if interpolate == nil && augment == nil {
            guard let count, count >= 1 else { throw ValidationError("--count must be at least 1") }
        }
        if let interpolate { guard interpolate >= 1 else { throw ValidationError("--interpolate must be at least 1") } }
        if let filter { guard (0..<1).contains(filter) else { throw ValidationError("--filter must be in [0, 1)") } }
        if let filterBy, !["discriminator", "two-sample", "labeller"].contains(filterBy) {
            throw ValidationError("--filter-by must be discriminator, two-sample or labeller")
        }
        if let filterKeep, ClassFilterKeep(rawValue: filterKeep) == nil { throw ValidationError("--filter-keep must be surest or hardest") }
        if let filterFloor { guard (0..<1).contains(filterFloor) else { throw ValidationError("--filter-floor must be in [0, 1)") } }
        if !labeller.isEmpty && perClass == nil { throw ValidationError("--labeller comes with --per-class") }
        if let classMix { guard (0..<1).contains(classMix) else { throw ValidationError("--class-mix must be in [0, 1)") } }
        if let psi { guard psi > 0 && psi.isFinite else { throw ValidationError("--psi must be positive") } }
        if perClass == nil && ((classMix ?? 0) > 0 || filterBy == "labeller" || filterKeep == "hardest") {
            throw ValidationError("--class-mix, --filter-by labeller and --filter-keep hardest come with --per-class")
        }
    }

    func run() throws {
        let (labellers, choice) = perClass == nil
            ? ([], ClassSetChoice.resolve(filter: filter, byLabeller: false, keep: nil, classMix: 0, psi: psi, hasLabeller: false))
            : try resolveClassSet(labellers: labeller, run: model, filter: filter, byLabeller: filterBy.map { $0 == "labeller" }, keep: filterKeep,
                                  classMix: classMix, psi: psi)
        if choice.keep == .hardest && !choice.byLabeller { throw ValidationError("--filter-keep hardest needs --filter-by labeller (a probability of the class)") }
        let floor = try resolveFilterFloor(filterFloor, choice: choice)
        let generator = try TrainedGenerator(run: model, checkpoint: checkpoint, average: !noEma, precision: precision.resolved)
        if let interpolate {
            let grid = Generation.interpolationGrid(generator, walks: interpolate, seed: seed, psi: choice.psi)
            try Data(try PNG.encode(grid)).write(to: URL(fileURLWithPath: out), options: .atomic)
            Console.note("wrote \(interpolate) latent walks to \(out)")
            return
        }
        var options = GenerationOptions(count: count ?? 0)
        options.seed = seed
        options.batch = batch
        options.format = format
        options.quality = quality
        options.overwrite = overwrite
        options.augment = augment
        options.ratio = ratio ?? 1
        if let perClass, let ratio { options.realPerClass = GenerationOptions.realPerClass(perClass: perClass, ratio: ratio) }
        options.classMix = choice.classMix
        options.psi = choice.psi
        let labellerScorer = try LabellerScorer.load(labellers, for: generator.configuration)
        var scorer: ClassScorer?
        if let filter = choice.filter, filter > 0 {
            options.filter = filter
            options.filterKeep = choice.keep
            options.filterFloor = floor
            switch choice.byLabeller ? "labeller" : filterBy ?? "two-sample" {
            case "two-sample":
                Console.note("training a two-sample classifier to score candidates")
                scorer = try TwoSampleScorer(generator: generator, dataset: data ?? TrainedGenerator.trainingData(run: model), seed: seed)
            case "labeller":
                scorer = labellerScorer
            default:
                scorer = try DiscriminatorScorer(run: model, checkpoint: checkpoint)
            }
        }
        let rows: [GeneratedImage]
        if let perClass {
            options.labels = labels ?? TrainedGenerator.trainingLabels(run: model)
            let confidence = try ClassConfidence(run: model, checkpoint: checkpoint)
            rows = try Generation.writePerClass(generator, perClass: perClass, options: options, to: out, confidence: confidence, scorer: scorer,
                                              labeller: labellerScorer) { done, total in
                Console.progress("generate: \(done)/\(total)")
            }
        } else {
            rows = try Generation.write(generator, options: options, to: out, scorer: scorer as? RealismScorer) { done, total in Console.progress("generate: \(done)/\(total)") }
        }
        Console.endProgress()
        let synthetic = rows.filter { $0.source == "synthetic" }.count
        if let scorer { Console.note("kept \(synthetic) of \(options.candidates(for: synthetic)) candidates by the \(scorer.name)'s score") }
        Console.note("wrote \(synthetic) synthetic\(rows.count > synthetic ? " and \(rows.count - synthetic) real" : "") images to \(out)/images (metadata.jsonl, latents.npy) from \(generator.checkpointPath)\(generator.usesAverage ? " (EMA weights)" : "")\(options.psi == 1 ? "" : ", latents scaled by ψ \(options.psi)")")
    }
}
