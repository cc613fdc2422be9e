import Foundation
import Recipes
import Yams

/// A problem in a pipeline file, with where it is.
public struct PipelineError: Error, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String

    public var description: String { "\(path)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// The stages a pipeline may chain, in the only order they run.
public enum StageName: String, CaseIterable, Sendable {
    case dataset, catalog, prepare, label, train, evaluate, generate, embed, probe, utility, report
}

/// What an option's value must be.
enum OptionKind {
    case string, integer, number, flag

    /// Why `value` is not of this kind (nil: it is).
    func problem(with value: String) -> String? {
        switch self {
        case .integer: return Int(value) == nil ? "must be an integer, not `\(value)`" : nil
        case .number: return Double(value) == nil ? "must be a number, not `\(value)`" : nil
        case .flag: return ["true", "false"].contains(value.lowercased()) ? nil : "must be true or false"
        case .string: return nil
        }
    }
}

/// Each stage's options: the CLI's flags of the same command, without their dashes.
let stageOptions: [StageName: [String: OptionKind]] = [
    .dataset: ["recipe": .string, "out": .string, "split": .string, "limit": .integer, "source": .string, "few-labels": .integer],
    .catalog: ["root": .string, "db": .string, "jobs": .integer, "follow-symlinks": .flag, "max-pixels": .integer,
               "near-threshold": .integer, "batch-size": .integer, "background": .string],
    .prepare: ["db": .string, "size": .integer, "channels": .integer, "out": .string, "fit": .string, "drop-near-duplicates": .flag,
               "limit": .integer, "dtype": .string, "jobs": .integer, "background": .string, "min-size": .integer, "decode": .string],
    .label: ["data": .string, "labels": .string, "out": .string, "keep": .number, "steps": .integer, "unlabelled-ratio": .integer,
             "threshold": .number, "thresholds": .string, "width": .integer, "depth": .integer, "validation-fraction": .number, "test-labels": .string, "test-data": .string,
             "save-labeller": .string, "suggest": .integer, "suggest-out": .string, "seed": .integer, "align": .string, "strong": .string],
    .train: ["data": .string, "out": .string, "epochs": .integer, "batch": .integer, "nz": .integer, "ngf": .integer, "ndf": .integer,
             "lr": .number, "lr-d": .number, "lr-g": .number, "noise": .string, "d-steps": .integer, "instance-noise": .number, "preset": .string, "gp": .number, "r1": .number, "dragan": .number, "feature-matching": .flag, "replay": .number,
             "unroll": .integer, "minibatch-std": .flag, "generator": .string, "d-norm": .string, "beta1": .number, "seed": .integer, "loss": .string, "diffaugment": .string, "real-label": .number, "dropout": .number, "ema": .number,
             "checkpoint-every": .integer, "sample-every": .integer, "log-every": .integer, "backend": .string, "kimg": .number,
             "snapshot-kimg": .number, "augment": .string, "ema-kimg": .number, "ema-rampup": .number, "eval-every": .number,
             "eval-count": .integer, "precision": .string, "labels": .string, "class-weight": .number, "fake-class-weight": .number, "generator-class-weight": .number, "labelled-batch": .integer, "labeller": .string, "pseudo-labels": .number, "projection": .flag, "class-norm": .flag],
    .evaluate: ["model": .string, "checkpoint": .string, "data": .string, "count": .integer, "seed": .integer, "bins": .integer,
                "no-ema": .flag, "no-two-sample": .flag, "out": .string],
    .generate: ["model": .string, "checkpoint": .string, "count": .integer, "out": .string, "format": .string, "quality": .integer,
                "seed": .integer, "batch": .integer, "no-ema": .flag, "augment": .string, "ratio": .number, "filter": .number,
                "filter-by": .string, "data": .string, "precision": .string, "per-class": .integer, "labeller": .string,
                "filter-keep": .string, "filter-floor": .number, "labels": .string, "class-mix": .number, "psi": .number],
    .embed: ["model": .string, "checkpoint": .string, "data": .string, "db": .string, "images": .string, "out": .string,
             "layers": .string, "batch": .integer, "decode": .string, "precision": .string],
    .probe: ["features": .string, "labels": .string, "test-fraction": .number, "seed": .integer, "l2": .number, "iterations": .integer,
             "out": .string],
    .utility: ["model": .string, "checkpoint": .string, "labels": .string, "test-labels": .string, "test-data": .string,
               "test-fraction": .number, "per-class": .integer, "filter": .number, "filter-by": .string, "filter-keep": .string,
               "filter-floor": .number, "labeller": .string, "relabel": .flag, "soft-labels": .flag, "synthetic-share": .number, "schedule": .string,
               "repeats": .integer, "steps": .integer, "seed": .integer, "class-mix": .number, "psi": .number, "set": .string, "out": .string],
    .report: ["db": .string, "run": .string, "generated": .string, "probe": .string, "utility": .string, "out": .string],
]

/// A parsed pipeline: stages in order with their options (values as the CLI would get them).
public struct PipelineSpec: Sendable {
    public struct Stage: Sendable {
        public var name: StageName
        public var options: [(key: String, value: String)]
        public var line: Int?

        public func value(_ key: String) -> String? { options.first { $0.key == key }?.value }
        public func has(_ key: String) -> Bool { options.contains { $0.key == key } }

        mutating func setDefault(_ key: String, _ value: String?) {
            guard let value, !has(key) else { return }
            options.append((key, value))
        }
    }

    public var name: String
    public var path: String
    public var stages: [Stage]

    public func stage(_ name: StageName) -> Stage? { stages.first { $0.name == name } }

    /// The catalogue that records stage runs.
    public var database: String? { stage(.catalog)?.value("db") ?? stage(.prepare)?.value("db") ?? stage(.embed)?.value("db") }

    /// `overrides`: `STAGE.OPTION=VALUE` assignments (`run --set`), applied before stages are
    /// connected, so a changed `catalog.db` reaches `prepare` as if the file had said it.
    public static func load(path: String, overrides: [String] = []) throws -> PipelineSpec {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw PipelineError(path: path, line: nil, message: "cannot read the pipeline file")
        }
        return try parse(text, path: path, overrides: overrides)
    }

    public static func parse(_ text: String, path: String, overrides: [String] = []) throws -> PipelineSpec {
        func fail(_ node: Node?, _ message: String) -> PipelineError { PipelineError(path: path, line: node?.mark?.line, message: message) }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw PipelineError(path: path, line: (error as? YamlError).flatMap(line(of:)), message: "not valid YAML: \(error)")
        }
        guard let root, let top = root.mapping else { throw fail(root, "expected a mapping with `name` and `stages`") }
        var name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var stagesNode: Node?
        for (key, value) in top {
            switch key.string {
            case "name": name = value.string ?? name
            case "stages": stagesNode = value
            case "description": continue
            default: throw fail(key, "unknown top-level key `\(key.string ?? "?")` (expected name, description, stages)")
            }
        }
        guard let stagesNode, let stageMapping = stagesNode.mapping else { throw fail(stagesNode ?? root, "`stages` must be a mapping of stage name to options") }
        var stages: [Stage] = []
        for (key, value) in stageMapping {
            guard let stageName = key.string.flatMap(StageName.init(rawValue:)) else {
                throw fail(key, "unknown stage `\(key.string ?? "?")` (stages: \(StageName.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if let previous = stages.last, StageName.allCases.firstIndex(of: previous.name)! >= StageName.allCases.firstIndex(of: stageName)! {
                throw fail(key, "stage `\(stageName.rawValue)` must come before `\(previous.name.rawValue)` (order: \(StageName.allCases.map(\.rawValue).joined(separator: " → ")))")
            }
            var options: [(String, String)] = []
            if let mapping = value.mapping {
                let known = stageOptions[stageName]!
                for (optionKey, optionValue) in mapping {
                    guard let rawKey = optionKey.string else { throw fail(optionKey, "option names must be strings") }
                    let option = rawKey.replacingOccurrences(of: "_", with: "-")
                    guard let kind = known[option] else {
                        throw fail(optionKey, "unknown option `\(rawKey)` for stage \(stageName.rawValue) (options: \(known.keys.sorted().joined(separator: ", ")))")
                    }
                    guard let scalar = optionValue.scalar?.string else { throw fail(optionValue, "`\(rawKey)` must be a single value") }
                    if let problem = kind.problem(with: scalar) { throw fail(optionValue, "`\(rawKey)` \(problem)") }
                    options.append((option, scalar))
                }
            } else if !(value.scalar?.string ?? "").isEmpty {
                throw fail(value, "stage `\(stageName.rawValue)` takes a mapping of options")
            }
            stages.append(Stage(name: stageName, options: options, line: key.mark?.line))
        }
        var spec = PipelineSpec(name: name, path: path, stages: stages)
        for assignment in overrides { try spec.set(assignment) }
        try spec.connectStages()
        return spec
    }

    /// Applies one `STAGE.OPTION=VALUE`: the stage must be in the pipeline, the option one of its
    /// own, the value of the option's kind. A leading `~/` is the home folder.
    mutating func set(_ assignment: String) throws {
        func fail(_ message: String) -> PipelineError { PipelineError(path: path, line: nil, message: "--set \(assignment): \(message)") }
        guard let equals = assignment.firstIndex(of: "="), let dot = assignment[..<equals].firstIndex(of: ".") else {
            throw fail("expected STAGE.OPTION=VALUE")
        }
        let stageText = String(assignment[..<dot]), rawKey = String(assignment[assignment.index(after: dot)..<equals])
        var value = String(assignment[assignment.index(after: equals)...])
        guard let stageName = StageName(rawValue: stageText) else {
            throw fail("unknown stage `\(stageText)` (stages: \(StageName.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let index = stages.firstIndex(where: { $0.name == stageName }) else {
            throw fail("this pipeline has no \(stageText) stage (it has \(stages.map(\.name.rawValue).joined(separator: ", ")))")
        }
        let option = rawKey.replacingOccurrences(of: "_", with: "-")
        let known = stageOptions[stageName]!
        guard let kind = known[option] else {
            throw fail("unknown option `\(rawKey)` for stage \(stageText) (options: \(known.keys.sorted().joined(separator: ", ")))")
        }
        if value == "~" || value.hasPrefix("~/") { value = FileManager.default.homeDirectoryForCurrentUser.path + value.dropFirst() }
        if let problem = kind.problem(with: value) { throw fail("`\(rawKey)` \(problem)") }
        if let existing = stages[index].options.firstIndex(where: { $0.key == option }) {
            stages[index].options[existing].value = value
        } else {
            stages[index].options.append((option, value))
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    /// Each stage takes the previous stages' outputs unless the file says otherwise.
    mutating func connectStages() throws {
        func index(_ name: StageName) -> Int? { stages.firstIndex { $0.name == name } }
        let datasetOut = stage(.dataset)?.value("out")
        let database = stage(.catalog)?.value("db")
        let preparedOut = stage(.prepare)?.value("out"), runOut = stage(.train)?.value("out"), embedOut = stage(.embed)?.value("out")
        if let i = index(.catalog) {
            stages[i].setDefault("root", datasetOut.map { $0 + "/images" })
            // The catalogue's statistics describe images as prepare will composite them.
            stages[i].setDefault("background", stage(.prepare)?.value("background"))
        }
        if let i = index(.prepare) { stages[i].setDefault("db", database) }
        // The few labels and the held-out ones: the dataset recipe's, unless the file says otherwise.
        let recipeLabels = stage(.dataset)?.has("few-labels") == true ? datasetOut : nil
        let fewLabels = stage(.label)?.value("labels") ?? recipeLabels.map { $0 + "/" + FashionMNISTRecipe.fewLabelsFile }
        let heldOutLabels = stage(.label)?.value("test-labels") ?? recipeLabels.map { $0 + "/" + FashionMNISTRecipe.heldOutLabelsFile }
        let labeller = stage(.label)?.value("save-labeller")
        if let i = index(.label) {
            stages[i].setDefault("data", preparedOut)
            stages[i].setDefault("labels", fewLabels)
            if !stages[i].has("test-data") { stages[i].setDefault("test-labels", heldOutLabels) }
        }
        if let i = index(.train) {
            stages[i].setDefault("data", preparedOut)
            // A train stage with a labeller draws the unlabelled images' classes from it: it takes the
            // few labels, since label's CSV labels every image.
            stages[i].setDefault("labels", stages[i].has("labeller") ? fewLabels : stage(.label)?.value("out"))
        }
        if let i = index(.evaluate) {
            stages[i].setDefault("model", runOut)
            stages[i].setDefault("data", preparedOut)
        }
        if let i = index(.generate) {
            stages[i].setDefault("model", runOut)
            if stages[i].has("per-class") { stages[i].setDefault("labeller", labeller) }
        }
        if let i = index(.embed) {
            stages[i].setDefault("model", runOut)
            if !stages[i].has("db") && !stages[i].has("images") { stages[i].setDefault("data", preparedOut) }
        }
        if let i = index(.probe) {
            stages[i].setDefault("features", embedOut)
            stages[i].setDefault("labels", datasetOut.map { $0 + "/labels.csv" })
        }
        if let i = index(.utility) {
            stages[i].setDefault("model", runOut)
            // The real-only classifier learns from the labels given, never the labeller's.
            stages[i].setDefault("labels", fewLabels)
            if !stages[i].has("test-data") { stages[i].setDefault("test-labels", heldOutLabels) }
            stages[i].setDefault("labeller", labeller)
        }
        if let i = index(.report) {
            stages[i].setDefault("db", database)
            stages[i].setDefault("run", runOut)
            stages[i].setDefault("generated", stage(.generate)?.value("out"))
            stages[i].setDefault("probe", stage(.probe)?.value("out"))
            stages[i].setDefault("utility", stage(.utility)?.value("out"))
        }
        let required: [StageName: [String]] = [.dataset: ["recipe", "out"], .catalog: ["root"], .prepare: ["db", "size", "channels", "out"],
                                               .label: ["data", "labels", "out"], .train: ["data", "out"], .evaluate: ["model"],
                                               .generate: ["model", "out"], .embed: ["model", "out"], .probe: ["features", "labels"],
                                               .utility: ["model", "labels"], .report: ["db", "out"]]
        for stage in stages {
            for key in required[stage.name]! where !stage.has(key) {
                throw PipelineError(path: path, line: stage.line, message: "stage \(stage.name.rawValue) needs `\(key)` (or an earlier stage that provides it)")
            }
        }
    }

    /// The stage's command line: `darkroom STAGE --key value …` (flags only when true).
    public func arguments(for stage: Stage) -> [String] {
        var arguments: [String] = []
        for (key, value) in stage.options {
            if stageOptions[stage.name]![key] == .flag {
                if value.lowercased() == "true" { arguments.append("--" + key) }
            } else if key == "root" {
                arguments.insert(value, at: 0)  // catalog's positional argument
            } else if key == "recipe" {
                arguments.insert(value, at: 0)  // datasets' subcommand
            } else {
                arguments += ["--" + key, value]
            }
        }
        return arguments
    }
}
