import ArgumentParser
import Evaluation
import Foundation
import GAN

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Judge a generator without labels: two-sample test, Fréchet distance, precision/recall, mode coverage, diversity.",
        discussion: """
        Draws --count real images from --data and as many from the generator, and measures them in a \
        fixed random-feature space (\(FeatureSpace.version)); figures compare across checkpoints and runs \
        on one dataset at the same --count and --seed. Writes OUT/evaluation.json, bins.png, \
        most-convincing.png and least-convincing.png (OUT defaults to RUN/evaluation).
        """)

    @Option(help: "The training run folder.")
    var model: String
    @Option(help: "latest, best, epoch-N, kimg-K, or a .safetensors path.")
    var checkpoint = "latest"
    @Option(help: "The prepared dataset to compare with (default: the one the run trained on).")
    var data: String?
    @Option(help: "Real and synthetic images compared.")
    var count = 2000
    @Option var seed: UInt64 = 0
    @Option(help: "Mode-coverage bins (default: count / 100, 10 to 50).")
    var bins: Int?
    @Flag(help: "Use the trained generator even when the run kept a moving average.")
    var noEma = false
    @Flag(help: "Skip the two-sample classifier (most of the time taken).")
    var noTwoSample = false
    @Option(help: ArgumentHelp("Two-sample classifier epochs (changing the recipe breaks comparison with other figures).", visibility: .hidden))
    var twoSampleEpochs: Int?
    @Option(help: ArgumentHelp("Two-sample classifier width (first block's channels).", visibility: .hidden))
    var twoSampleWidth: Int?
    @Option(help: ArgumentHelp("Two-sample classifier input noise.", visibility: .hidden))
    var twoSampleNoise: Float?
    @Option(help: "Folder for evaluation.json and the figures' images.")
    var out: String?
    @Flag(help: "Print the figures as JSON on stdout.")
    var json = false

    func validate() throws {
        guard count >= 100 else { throw ValidationError("--count must be at least 100") }
        if let bins { guard bins >= 2 else { throw ValidationError("--bins must be at least 2") } }
    }

    func run() throws {
        let generator = try TrainedGenerator(run: model, checkpoint: checkpoint, average: !noEma)
        let dataset = try data ?? TrainedGenerator.trainingData(run: model)
        var options = EvaluationOptions()
        options.count = count
        options.seed = seed
        options.bins = bins
        options.twoSample = !noTwoSample
        if let twoSampleEpochs { options.twoSampleRecipe.epochs = twoSampleEpochs }
        if let twoSampleWidth { options.twoSampleRecipe.width = twoSampleWidth }
        if let twoSampleNoise { options.twoSampleRecipe.noise = twoSampleNoise }
        let started = Date()
        let reference = try RealReference(dataset: dataset, options: options)
        let (report, evaluation, synthetic) = try GeneratorEvaluation.evaluate(generator, reference: reference, seed: seed)
        let directory = out ?? model + "/evaluation"
        try GeneratorEvaluation.write(report, evaluation: evaluation, synthetic: synthetic, reference: reference, to: directory)
        if json {
            print(try Console.json(report))
        } else {
            let figures = report.figures
            var lines = [String(format: "fd %.3f (%@), precision %.3f, recall %.3f, ndb %d of %d bins",
                                figures.fd, figures.featureSpace, figures.precision, figures.recall, figures.ndb, figures.ndbBins.count)]
            if let accuracy = figures.twoSampleAccuracy {
                lines.append(String(format: "two-sample accuracy %.3f (0.5: indistinguishable), held-out loss %.3f", accuracy, figures.twoSampleLoss ?? .nan))
            }
            lines.append("diversity: " + report.diversity.message)
            lines.forEach { print($0) }
        }
        Console.note(String(format: "evaluated %@%@ on %d images of %@ in %.1fs; wrote %@/evaluation.json",
                            generator.checkpointPath, generator.usesAverage ? " (EMA weights)" : "", reference.count, dataset,
                            Date().timeIntervalSince(started), directory))
    }
}
