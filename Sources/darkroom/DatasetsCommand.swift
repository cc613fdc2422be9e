import ArgumentParser
import Foundation
import Recipes

struct DatasetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets",
        abstract: "Make example dumps from Debian-packaged data sets.",
        subcommands: [FashionMNIST.self, MessyDump.self])

    struct FashionMNIST: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Write Fashion-MNIST (Debian's dataset-fashion-mnist) as an unlabeled dump of PNGs; labels go to labels.csv.")

        @Option(help: "Output folder: OUT/images/… and OUT/labels.csv.")
        var out: String

        @Option(help: "train, test or all.")
        var split = "all"

        @Option(help: "At most this many images.")
        var limit: Int?

        @Option(help: "Where the IDX files are.")
        var source = FashionMNISTRecipe.defaultSource

        @Option(help: "Also write OUT/few-labels.csv (path,label): the first N images of each class, as a user might label them by hand; and OUT/held-out-labels.csv, the other images' labels, to measure with.")
        var fewLabels: Int?

        func validate() throws {
            guard FashionMNISTRecipe.Split(rawValue: split) != nil else { throw ValidationError("--split must be train, test or all") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            if let fewLabels, fewLabels < 1 { throw ValidationError("--few-labels must be at least 1") }
        }

        func run() throws {
            let recipe = FashionMNISTRecipe(source: source, split: FashionMNISTRecipe.Split(rawValue: split)!, limit: limit, fewLabelsPerClass: fewLabels)
            let result = try recipe.write(to: out)
            Console.note("wrote \(result.images) images under \(result.imagesDirectory); labels (for evaluation only) in \(result.labels)"
                         + (result.fewLabels.map { "; \(fewLabels!) per class to train with in \($0), the rest to measure with in \(result.heldOutLabels!)" } ?? ""))
        }
    }

    struct MessyDump: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "messy-dump",
            abstract: "Write a realistic dark-data dump (copies, near copies, damaged, blank and non-image files, a symlink loop) to OUT/dump, with OUT/expected.csv.")

        @Option(help: "Output folder: OUT/dump/… and OUT/expected.csv.")
        var out: String

        @Option(help: "Distinct pictures to start from.")
        var pictures = 120

        @Option(help: "Where the Fashion-MNIST IDX files are.")
        var source = FashionMNISTRecipe.defaultSource

        func validate() throws {
            guard pictures >= 12 else { throw ValidationError("--pictures must be at least 12") }
        }

        func run() throws {
            let result = try MessyDumpRecipe(source: source, pictures: pictures).write(to: out)
            Console.note("wrote \(result.files) files under \(result.root); what each is: \(out)/expected.csv")
        }
    }
}
