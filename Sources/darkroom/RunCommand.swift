import ArgumentParser
import Foundation
import Pipeline

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline (Pipelines/*.yaml): dataset → catalog → prepare → label → train → evaluate → generate → embed → probe → utility → report, skipping what is up to date.")

    @Argument(help: "The pipeline file.")
    var pipeline: String
    @Option(help: "Re-run from this stage on, even if up to date.")
    var from: String?
    @Flag(help: "Re-run every stage (a changed train stage retrains from scratch).")
    var force = false
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a stage option, e.g. --set catalog.root=~/photos (repeatable).", valueName: "STAGE.OPTION=VALUE"))
    var overrides: [String] = []

    func validate() throws {
        if let from, StageName(rawValue: from) == nil {
            throw ValidationError("--from must be one of \(StageName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let spec = try PipelineSpec.load(path: pipeline, overrides: overrides)
        let runner = PipelineRunner(spec: spec)
        runner.force = force
        runner.from = from.flatMap(StageName.init(rawValue:))
        let started = Date()
        let outcomes = try runner.run(execute: { stage, arguments in
            switch stage {
            case .dataset:
                var command = try DatasetsCommand.parseAsRoot(arguments)
                try command.run()
            case .catalog: try CatalogCommand.parse(arguments).run()
            case .prepare: try PrepareCommand.parse(arguments).run()
            case .label: try LabelCommand.parse(arguments).run()
            case .train: try TrainCommand.parse(arguments).run()
            case .evaluate: try EvaluateCommand.parse(arguments).run()
            case .generate: try GenerateCommand.parse(arguments).run()
            case .embed: try EmbedCommand.parse(arguments).run()
            case .probe: try ProbeCommand.parse(arguments).run()
            case .utility: try UtilityCommand.parse(arguments).run()
            case .report: try ReportCommand.parse(arguments).run()
            }
        }, note: { Console.note("[\(spec.name)] \($0)") })
        let ran = outcomes.filter { $0.1 == .ran }.map { $0.0.rawValue }
        Console.note(String(format: "[%@] done in %.0fs: ran %@", spec.name, Date().timeIntervalSince(started),
                            ran.isEmpty ? "nothing (all up to date)" : ran.joined(separator: ", ")))
        var outputs: [String] = []
        if let out = spec.stage(.label)?.value("out") { outputs.append("labels for every image: \(out)") }
        if let out = spec.stage(.generate)?.value("out") { outputs.append("synthetic images: \(out)/images (metadata.jsonl, latents.npy)") }
        if let out = spec.stage(.embed)?.value("out") { outputs.append("features: \(out).npy (rows: \(out).csv)") }
        if let out = spec.stage(.train)?.value("out") { outputs.append("model and samples: \(out) (checkpoints/, samples/, metrics.jsonl, summary.json)") }
        if let out = spec.stage(.probe)?.value("out") { outputs.append("probe accuracy: \(out)") }
        if let out = spec.stage(.utility)?.value("out") { outputs.append("does the synthetic set help (utility): \(out)") }
        if let out = spec.stage(.report)?.value("out") { outputs.append("report: \(out)") }
        for line in outputs { Console.note("  " + line) }
    }
}
