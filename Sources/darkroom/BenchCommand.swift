import ArgumentParser
import Catalog
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks; each prints JSON on stdout.",
        subcommands: [CatalogBench.self])

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
}
