import ArgumentParser

@main
struct Darkroom: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "darkroom",
        abstract: "Turn folders of unlabeled images into catalogues, training sets, GANs and features.",
        version: "0.1.0",
        subcommands: [CatalogCommand.self, InspectCommand.self, PrepareCommand.self, TrainCommand.self, GenerateCommand.self, EvaluateCommand.self, EmbedCommand.self, ProbeCommand.self, UtilityCommand.self, LabelCommand.self, RunCommand.self, ReportCommand.self, DatasetsCommand.self, BenchCommand.self])
}
