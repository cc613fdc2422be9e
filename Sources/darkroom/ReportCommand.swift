import ArgumentParser
import Catalog
import Foundation
import Report

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML report of a catalogue and, optionally, a training run.")

    @Option(help: "The catalogue database.")
    var db = "darkroom.sqlite"
    @Option(name: .customLong("run"), help: "A training run folder.")
    var trainingRun: String?
    @Option(help: "A generate output folder.")
    var generated: String?
    @Option(help: "A probe result (darkroom probe --json > FILE).")
    var probe: String?
    @Option(help: "A utility report (darkroom utility --out FILE): the classifiers' test accuracies side by side.")
    var utility: String?
    @Option(help: "The HTML file to write.")
    var out: String

    func validate() throws {
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db): no such catalogue") }
        if let trainingRun, !FileManager.default.fileExists(atPath: trainingRun + "/metrics.jsonl") {
            throw ValidationError("\(trainingRun): not a training run (no metrics.jsonl)")
        }
    }

    func run() throws {
        let report = HTMLReport(database: try CatalogDatabase(path: db), databasePath: db, run: trainingRun, generated: generated, probe: probe,
                                utility: utility)
        try Data(try report.render().utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        Console.note("wrote \(out)")
    }
}
