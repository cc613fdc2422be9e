import ArgumentParser
import Catalog
import Dataset
import Imaging
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks; each prints JSON on stdout.",
        subcommands: [CatalogBench.self, PrepareBench.self])

    struct CatalogBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "catalog", abstract: "Catalogue ROOT into a scratch database, then re-scan it unchanged.")

        @Argument(help: "The folder to catalogue.")
        var root: String

        @Option(help: "Files inspected in parallel.")
        var jobs = ProcessInfo.processInfo.activeProcessorCount

        func run() throws {
            print(try Console.json(try CatalogBenchmark.run(root: root, options: CatalogOptions(jobs: jobs))))
        }
    }

    struct PrepareBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prepare", abstract: "Prepare the catalogue's usable images into a scratch folder; images/s.")

        @Option(help: "The catalogue database.")
        var db = "darkroom.sqlite"

        @Option var size = 32
        @Option var channels = 1
        @Option var limit: Int?

        @Option(help: "Images decoded in parallel.")
        var jobs = ProcessInfo.processInfo.activeProcessorCount

        func run() throws {
            let options = PrepareOptions(size: size, channels: channels, limit: limit, jobs: jobs)
            print(try Console.json(try PrepareBenchmark.run(database: try CatalogDatabase(path: db), options: options)))
        }
    }
}
