import Catalog
import Foundation
import Formats
import Recipes

/// What happened to each stage.
public enum StageOutcome: Equatable, Sendable {
    case ran
    case skipped
}

/// Runs a pipeline's stages in order. A stage's fingerprint covers its options and its inputs'
/// fingerprints (and, for `catalog`, a stat-only signature of the folder), so changing anything
/// upstream re-runs everything after it. A stage whose fingerprint matches a finished run and
/// whose outputs exist is skipped; an interrupted `train` resumes from its checkpoint.
public final class PipelineRunner {
    public let spec: PipelineSpec
    /// Run every stage from this one on, whatever their fingerprints.
    public var from: StageName?
    /// Run every stage.
    public var force = false

    public init(spec: PipelineSpec) { self.spec = spec }

    /// `execute(stage, arguments)` runs one stage (the CLI maps it to its command).
    public func run(execute: (StageName, [String]) throws -> Void, note: (String) -> Void = { _ in }) throws -> [(StageName, StageOutcome)] {
        var outcomes: [(StageName, StageOutcome)] = []
        var fingerprints: [StageName: String] = [:]
        // The catalogue records stage runs; it is created here if the catalog stage has not run yet.
        let database = try spec.database.map { path -> CatalogDatabase in
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            return try CatalogDatabase(path: path)
        }
        // Only the user forces; changes upstream reach downstream through the chained fingerprints.
        var forced = force
        for stage in spec.stages {
            if stage.name == from { forced = true }
            var arguments = spec.arguments(for: stage)
            let upstream = PipelineRunner.inputs(of: stage).compactMap { fingerprints[$0] }.joined(separator: ",")
            let fingerprint = Fingerprint.hex(spec.name + "|" + stage.name.rawValue + "|" + arguments.joined(separator: "\u{1F}") + "|" + upstream
                                              + "|" + inputSignature(stage))
            fingerprints[stage.name] = fingerprint
            let previous = try database?.lastStageRun(pipeline: spec.name, stage: stage.name.rawValue)
            if !forced, let previous, previous.finished, previous.fingerprint == fingerprint, outputsExist(stage) {
                note("\(stage.name.rawValue): up to date, skipped")
                outcomes.append((stage.name, .skipped))
                continue
            }
            switch stage.name {
            case .train:
                // Same options as an unfinished run: resume it. Different: start over only if asked.
                if let out = stage.value("out"), FileManager.default.fileExists(atPath: out + "/checkpoints/latest.safetensors") {
                    if previous?.fingerprint == fingerprint && !forced {
                        arguments.append("--resume")
                    } else {
                        guard forced else {
                            throw PipelineError(path: spec.path, line: stage.line,
                                                message: "\(out) holds a run trained with other options or inputs; pass --force (or --from train) to retrain it from scratch")
                        }
                        try removeRun(out)
                    }
                }
            case .generate:
                arguments.append("--overwrite")
            default:
                break
            }
            note("\(stage.name.rawValue): darkroom \(stage.name == .dataset ? "datasets" : stage.name.rawValue) \(arguments.joined(separator: " "))")
            let id = try database?.stageStarted(pipeline: spec.name, stage: stage.name.rawValue, fingerprint: fingerprint, arguments: arguments)
            try execute(stage.name, arguments)
            if let id { try database?.stageFinished(id) }
            outcomes.append((stage.name, .ran))
        }
        return outcomes
    }

    /// The stages whose outputs a stage reads.
    static let inputs: [StageName: [StageName]] = [
        .dataset: [], .catalog: [.dataset], .prepare: [.catalog], .label: [.prepare, .dataset], .train: [.prepare, .label],
        .evaluate: [.train, .prepare], .generate: [.train, .prepare, .label], .embed: [.train, .prepare, .catalog],
        .probe: [.embed, .dataset], .utility: [.train, .prepare, .label, .dataset],
        .report: [.catalog, .train, .evaluate, .generate, .probe, .utility],
    ]

    /// The same for one stage: utility with `set` reads a generate stage's folder too.
    static func inputs(of stage: PipelineSpec.Stage) -> [StageName] {
        inputs[stage.name]! + (stage.name == .utility && stage.has("set") ? [.generate] : [])
    }

    /// For catalog: file count, total size and newest mtime under the root (a stat-only walk). For
    /// a stage that reads labels files: their sizes and mtimes (a user may edit them between runs).
    func inputSignature(_ stage: PipelineSpec.Stage) -> String {
        switch stage.name {
        case .catalog:
            guard let root = stage.value("root"), var walker = try? FileWalker(root: root, followSymlinks: stage.value("follow-symlinks") == "true") else { return "missing" }
            var count = 0, bytes: Int64 = 0, newest: Int64 = 0
            while let file = walker.next() { count += 1; bytes += file.sizeBytes; newest = max(newest, file.mtimeNs) }
            return "\(count):\(bytes):\(newest)"
        case .probe, .label, .train, .utility:
            return ["labels", "test-labels"].compactMap { stage.value($0) }.map { labels in
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: labels) else { return "missing" }
                return "\(attributes[.size] ?? 0):\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
            }.joined(separator: ",")
        default:
            return ""
        }
    }

    func outputsExist(_ stage: PipelineSpec.Stage) -> Bool {
        let exists = { (path: String) in FileManager.default.fileExists(atPath: path) }
        switch stage.name {
        case .dataset:
            let files = ["labels.csv"] + (stage.has("few-labels") ? [FashionMNISTRecipe.fewLabelsFile, FashionMNISTRecipe.heldOutLabelsFile] : [])
            return stage.value("out").map { out in files.allSatisfy { exists(out + "/" + $0) } } ?? false
        case .catalog: return spec.database.map(exists) ?? false
        case .prepare: return stage.value("out").map { exists($0 + "/dataset.json") } ?? false
        case .label:
            return (stage.value("out").map(exists) ?? false) && (stage.value("save-labeller").map(exists) ?? true)
                && (stage.value("suggest-out").map(exists) ?? true)
        case .train: return stage.value("out").map { exists($0 + "/summary.json") && exists($0 + "/checkpoints/latest.safetensors") } ?? false
        case .evaluate:
            return (stage.value("out") ?? stage.value("model").map { $0 + "/evaluation" }).map { exists($0 + "/evaluation.json") } ?? false
        case .generate: return stage.value("out").map { exists($0 + "/metadata.jsonl") && exists($0 + "/latents.npy") } ?? false
        case .embed: return stage.value("out").map { exists($0 + ".npy") && exists($0 + ".csv") } ?? false
        case .probe, .utility: return stage.value("out").map(exists) ?? true
        case .report: return stage.value("out").map(exists) ?? false
        }
    }

    /// Removes a training run folder, but only one that looks like one.
    func removeRun(_ out: String) throws {
        guard FileManager.default.fileExists(atPath: out + "/config.json") || FileManager.default.fileExists(atPath: out + "/checkpoints") else {
            throw PipelineError(path: spec.path, line: nil, message: "\(out) is not a Darkroom run; refusing to delete it")
        }
        try FileManager.default.removeItem(atPath: out)
    }
}
