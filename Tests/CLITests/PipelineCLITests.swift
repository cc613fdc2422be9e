import Evaluation
import Foundation
import GAN
import Imaging
import NN
import TestSupport
import XCTest

final class PipelineCLITests: XCTestCase {
    /// A whole pipeline on 40 test pictures with a tiny model: up-to-date stages are skipped, and
    /// a pipeline killed during training resumes it rather than starting over.
    func testPipelineRunsSkipsAndResumesAfterAKill() throws {
        let directory = try TemporaryDirectory("pipeline")
        defer { directory.remove() }
        for index in 0..<40 {
            try directory.write("photos/\(index).png", try PNG.encode(Pictures.pattern(width: 40, height: 36, channels: 1, seed: index)))
        }
        let yaml = """
            name: tiny
            stages:
              catalog: {root: \(directory.path)/photos, db: \(directory.path)/c.sqlite}
              prepare: {size: 32, channels: 1, out: \(directory.path)/data}
              train: {out: \(directory.path)/run, epochs: 40, batch: 8, nz: 16, ngf: 8, ndf: 8, log-every: 1}
              generate: {count: 12, out: \(directory.path)/gen}
              embed: {out: \(directory.path)/features, layers: last}
            """
        let pipeline = try directory.write("tiny.yaml", Array(yaml.utf8)).path

        // Start, and kill -9 once training has written a checkpoint.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DarkroomBinary.path)
        process.arguments = ["run", pipeline]
        process.standardError = FileHandle.nullDevice
        try process.run()
        let checkpoint = directory.file("run/checkpoints/latest.safetensors").path
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline { usleep(20_000) }
        let interrupted = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        let resumed = try DarkroomBinary.run(["run", pipeline])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(interrupted, "the kill came after training finished: the test proved nothing")
        XCTAssertTrue(resumed.stderr.contains("catalog: up to date"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("--resume"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming from"), resumed.stderr)
        let metrics = try String(contentsOfFile: directory.file("run/metrics.jsonl").path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 40 * 5, "every iteration logged once, none twice")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.file("gen/images").path).count, 12)

        let again = try DarkroomBinary.run(["run", pipeline])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("ran nothing"), again.stderr)

        let bad = try directory.write("bad.yaml", Array("stages:\n  catalog:\n    root: x\n    jobz: 1\n".utf8)).path
        let failed = try DarkroomBinary.run(["run", bad])
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertTrue(failed.stderr.contains("bad.yaml:4"), failed.stderr)

        // --set: overrides without editing the file; mistakes name the assignment.
        let wrong = try DarkroomBinary.run(["run", pipeline, "--set", "train.kimgs=3"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("--set train.kimgs=3: unknown option `kimgs` for stage train"), wrong.stderr)
        let moved = try DarkroomBinary.run(["run", pipeline, "--set", "generate.count=5", "--set", "generate.out=\(directory.path)/gen5"])
        XCTAssertEqual(moved.status, 0, moved.stderr)
        XCTAssertTrue(moved.stderr.contains("train: up to date"), moved.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.file("gen5/images").path).count, 5)
    }
}

extension PipelineCLITests {
    /// A labelled synthetic set on 60 test pictures: train on the few labels, draw a set per
    /// class, measure it with utility, and report the figures; a re-run skips it all, and an
    /// edited labels file is noticed. (`label` between prepare and train: PipelineSpecTests.)
    func testFewLabelsPipelineTrainsDrawsMeasuresAndReports() throws {
        let directory = try TemporaryDirectory("few-labels")
        defer { directory.remove() }
        var few = "path,label\n", held = "path,label\n"
        for index in 0..<60 {
            try directory.write("photos/\(index).png", try PNG.encode(Pictures.pattern(width: 32, height: 32, channels: 1, seed: index)))
            let row = "\(index).png,\(index % 2 == 0 ? "even" : "odd")\n"
            if index < 12 { few += row } else if index < 24 { held += row }
        }
        let fewPath = try directory.write("few.csv", Array(few.utf8)).path
        let heldPath = try directory.write("held.csv", Array(held.utf8)).path
        let d = directory.path
        let yaml = """
            name: few
            stages:
              catalog: {root: \(d)/photos, db: \(d)/c.sqlite}
              prepare: {size: 32, channels: 1, out: \(d)/data}
              train: {labels: \(fewPath), out: \(d)/run, epochs: 2, batch: 8, nz: 8, ngf: 8, ndf: 8}
              generate: {per-class: 4, out: \(d)/gen}
              utility: {labels: \(fewPath), test-labels: \(heldPath), per-class: 4, steps: 10, out: \(d)/utility.json}
              report: {out: \(d)/report.html}
            """
        let pipeline = try directory.write("few.yaml", Array(yaml.utf8)).path
        let first = try DarkroomBinary.run(["run", pipeline])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("ran catalog, prepare, train, generate, utility, report"), first.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.file("gen/images/even").path).count, 4)
        let figures = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: directory.file("utility.json"))) as? [String: Any])
        XCTAssertEqual(figures["real_count"] as? Int, 12)
        XCTAssertEqual(figures["test_count"] as? Int, 12, "tested on the held-out labels")
        XCTAssertEqual(figures["synthetic_count"] as? Int, 8)
        XCTAssertEqual(figures["steps"] as? Int, 10)
        XCTAssertEqual(figures["filter"] as? Double, 0, "without a labeller every image as drawn")
        XCTAssertNil(figures["class_mix"])
        let html = try String(contentsOfFile: directory.file("report.html").path, encoding: .utf8)
        XCTAssertTrue(html.contains("Does the synthetic set help? (utility)"))
        XCTAssertTrue(html.contains(String(format: "<b>%.1f%%</b>", 100 * (figures["real_only"] as? Double ?? -1))))

        let again = try DarkroomBinary.run(["run", pipeline])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("ran nothing"), again.stderr)
        try directory.write("held.csv", Array((held + "24.png,even\n").utf8))
        // Logged to one file, as `> log 2>&1`: each stage's results sit under its own header.
        let edited = try Process.runMerged(DarkroomBinary.path, ["run", pipeline])
        XCTAssertEqual(edited.status, 0, edited.output)
        XCTAssertTrue(edited.output.contains("ran utility, report"), "an edited labels file re-runs what reads it: " + edited.output)
        let figuresAt = try XCTUnwrap(edited.output.range(of: "test accuracy on")?.lowerBound, edited.output)
        let reportAt = try XCTUnwrap(edited.output.range(of: "[few] report:")?.lowerBound, edited.output)
        XCTAssertLessThan(figuresAt, reportAt, "utility's figures come before the next stage's header: " + edited.output)
        let remeasured = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: directory.file("utility.json"))) as? [String: Any])
        XCTAssertEqual(remeasured["test_count"] as? Int, 13)

        // Judging the exported folder itself: generate's options then reach utility.
        let judged = yaml.replacingOccurrences(of: "per-class: 4, steps: 10,", with: "set: \(d)/gen, steps: 10,")
        let setPipeline = try directory.write("few-set.yaml", Array(judged.utf8)).path
        let read = try DarkroomBinary.run(["run", setPipeline])
        XCTAssertEqual(read.status, 0, read.stderr)
        XCTAssertTrue(read.stderr.contains("ran utility, report"), read.stderr)
        let readFigures = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: directory.file("utility.json"))) as? [String: Any])
        XCTAssertEqual(readFigures["sets"] as? [String], ["\(d)/gen"])
        XCTAssertEqual(readFigures["synthetic_count"] as? Int, 8)
        try directory.write("few-set.yaml", Array(judged.replacingOccurrences(of: "generate: {per-class: 4,", with: "generate: {per-class: 3,").utf8))
        let regenerated = try DarkroomBinary.run(["run", setPipeline])
        XCTAssertEqual(regenerated.status, 0, regenerated.stderr)
        XCTAssertTrue(regenerated.stderr.contains("ran generate, utility, report"), regenerated.stderr)
        let rejudged = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: directory.file("utility.json"))) as? [String: Any])
        XCTAssertEqual(rejudged["synthetic_count"] as? Int, 6)
    }
}

final class RunLabellerCLITests: XCTestCase {
    /// train --labeller keeps a copy in the run; generate --per-class and utility then use it by
    /// default, with the set measured best (the hardest quarter of four times the candidates, half
    /// drawn between classes); --filter 0 --class-mix 0 give every image as drawn.
    func testARunsLabellerGivesTheMeasuredBestSetByDefault() throws {
        let directory = try TemporaryDirectory("run-labeller")
        defer { directory.remove() }
        let data = try preparedPatterns(in: directory, count: 24)
        let few = "path,label\n" + (0..<8).map { "\($0).png,\($0 % 2 == 0 ? "even" : "odd")\n" }.joined()
        let labels = try directory.write("few.csv", Array(few.utf8)).path
        let labeller = directory.file("labeller.safetensors").path, run = directory.file("run").path
        // A labeller as label --save-labeller writes one; what it has learnt does not matter here, but
        // untrained it gives every image one half: a few steps on stripes make its scores differ.
        var recipe = DownstreamClassifier.Recipe()
        (recipe.width, recipe.batch, recipe.minimumSteps) = (4, 8, 10)
        let classifier = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        classifier.train(images: (0..<8 * 1024).map { $0 / 1024 % 2 == 0 ? ($0 / 64 % 2 == 0 ? 1 : -1) : ($0 % 2 == 0 ? 1 : -1) },
                         labels: (0..<8).map { $0 % 2 })
        try Labeller(classifier: classifier, classes: ["even", "odd"]).write(to: labeller)
        let trained = try DarkroomBinary.run(["train", "--data", data, "--out", run, "--labels", labels, "--labeller", labeller, "--epochs", "1",
                                              "--batch", "8", "--nz", "8", "--ngf", "8", "--ndf", "8"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run + "/labeller.safetensors")), try Data(contentsOf: URL(fileURLWithPath: labeller)))
        try FileManager.default.removeItem(atPath: labeller)  // what follows finds the run's copy

        func rows(_ folder: String) throws -> [[String: Any]] {
            try String(contentsOfFile: folder + "/metadata.jsonl", encoding: .utf8).split(separator: "\n")
                .map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        }
        let best = try DarkroomBinary.run(["generate", "--model", run, "--per-class", "4", "--out", directory.file("best").path])
        XCTAssertEqual(best.status, 0, best.stderr)
        XCTAssertTrue(best.stderr.contains("with the labeller the run trained with, \(run)/labeller.safetensors"), best.stderr)
        XCTAssertTrue(best.stderr.contains("kept 8 of 32 candidates by the labeller's score"), best.stderr)
        let chosen = try rows(directory.file("best").path)
        XCTAssertEqual(chosen.count, 8)
        XCTAssertTrue(chosen.allSatisfy { $0["labeller_probabilities"] != nil && $0["score"] != nil && $0["psi"] as? Double == 1.5 }, "\(chosen)")
        let plain = try DarkroomBinary.run(["generate", "--model", run, "--per-class", "4", "--out", directory.file("plain").path,
                                            "--filter", "0", "--class-mix", "0"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertFalse(plain.stderr.contains("kept"), plain.stderr)
        for psi in ["0", "nan"] {
            let refused = try DarkroomBinary.run(["generate", "--model", run, "--per-class", "4", "--out", directory.file("psi").path, "--psi", psi])
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertTrue(refused.stderr.contains("--psi must be positive"), refused.stderr)
        }
        let drawn = try rows(directory.file("plain").path)
        XCTAssertEqual(drawn.map { $0["index"] as? Int }, [0, 1, 2, 3, 4, 5, 6, 7], "every image as drawn")
        XCTAssertTrue(drawn.allSatisfy { $0["score"] == nil && $0["mixed_with"] == nil && $0["psi"] == nil && $0["labeller_probabilities"] != nil })
        // The labelled real images beside them: all 8, or with --ratio 2 at most 4 / 2 of each class.
        for (name, flags, real) in [("with-real", [String](), 8), ("with-some-real", ["--ratio", "2"], 4)] {
            let result = try DarkroomBinary.run(["generate", "--model", run, "--per-class", "4", "--out", directory.file(name).path, "--augment", data] + flags)
            XCTAssertEqual(result.status, 0, result.stderr)
            let written = try rows(directory.file(name).path).filter { $0["source"] as? String == "real" }
            XCTAssertEqual(written.count, real, name)
            XCTAssertEqual(written.filter { $0["label"] as? String == "even" }.count, real / 2, name)
        }

        // A floor no candidate reaches (the labeller, 10 steps on stripes, is sure of none): the
        // hardest of none, then the surest of the rest, so the surest.
        for (name, flags) in [("floored", ["--filter-floor", "0.99"]), ("surest", ["--filter-keep", "surest"])] {
            let result = try DarkroomBinary.run(["generate", "--model", run, "--per-class", "4", "--out", directory.file(name).path] + flags)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let floored = try rows(directory.file("floored").path), surest = try rows(directory.file("surest").path)
        XCTAssertTrue(floored.allSatisfy { ($0["score"] as? Double ?? 1) < 0.99 }, "\(floored)")
        XCTAssertEqual(floored.map { $0["index"] as? Int }, surest.map { $0["index"] as? Int })
        XCTAssertNotEqual(floored.map { $0["index"] as? Int }, chosen.map { $0["index"] as? Int }, "\(floored.map { $0["score"]! }) \(chosen.map { $0["score"]! })")

        let utility = try DarkroomBinary.run(["utility", "--model", run, "--labels", labels, "--per-class", "4", "--steps", "5", "--json"])
        XCTAssertEqual(utility.status, 0, utility.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(utility.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["filter"] as? Double, 0.75)
        XCTAssertEqual(report["filter_by"] as? String, "labeller")
        XCTAssertEqual(report["filter_keep"] as? String, "hardest")
        XCTAssertEqual(report["filter_floor"] as? Double, 0.5)
        XCTAssertEqual(report["class_mix"] as? Double, 0.25)
        XCTAssertEqual(report["psi"] as? Double, 1.5)
        XCTAssertEqual(report["labellers"] as? [String], [run + "/labeller.safetensors"])

        // The exported folders themselves, joined, with their rows' soft labels; --set brings its
        // own filter, so choosing one here is refused.
        let sets = ["--set", directory.file("best").path, "--set", directory.file("plain").path]
        let read = try DarkroomBinary.run(["utility", "--model", run, "--labels", labels, "--steps", "5", "--soft-labels", "--json"] + sets)
        XCTAssertEqual(read.status, 0, read.stderr)
        let readReport = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(readReport["synthetic_count"] as? Int, 16)
        XCTAssertEqual(readReport["sets"] as? [String], [directory.file("best").path, directory.file("plain").path])
        XCTAssertEqual(readReport["soft_labels"] as? Bool, true)
        XCTAssertNil(readReport["filter_by"])
        XCTAssertNil(readReport["class_mix"])
        for (flag, value) in [("--filter", "0.5"), ("--per-class", "4"), ("--psi", "1.5")] {
            let refused = try DarkroomBinary.run(["utility", "--model", run, "--labels", labels, flag, value] + sets)
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertTrue(refused.stderr.contains("\(flag) chooses a set drawn here"), refused.stderr)
        }
    }
}

final class TrainCLITests: XCTestCase {
    /// Ctrl-C (SIGINT) during training writes a checkpoint and exits with 130; --resume continues.
    func testInterruptWritesACheckpointAndResumeContinues() throws {
        let directory = try TemporaryDirectory("interrupt")
        defer { directory.remove() }
        let data = try preparedPatterns(in: directory, count: 32), run = directory.file("run").path
        let arguments = ["train", "--data", data, "--out", run, "--epochs", "200", "--batch", "8", "--nz", "8", "--ngf", "8", "--ndf", "8", "--log-every", "1"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DarkroomBinary.path)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        try process.run()
        let metrics = run + "/metrics.jsonl"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 6 { usleep(20_000) }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130)
        let done = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n").count
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/checkpoints/latest.safetensors"))
        let resumed = try DarkroomBinary.run(arguments.map { $0 == "200" ? "3" : $0 } + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming from"), resumed.stderr)
        let lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 12, "3 epochs of 4 iterations, each logged once (\(done) before the interrupt)")
    }
}

final class RemedyCLITests: XCTestCase {
    /// --preset sets its bundle, an explicit flag overrides the preset's value, config.json records
    /// both; bench train-step times the same flags; a bad value names the flag and exits non-zero.
    func testPresetFlagsOverrideAndBenchTimesRemedies() throws {
        let directory = try TemporaryDirectory("preset")
        defer { directory.remove() }
        let data = try preparedPatterns(in: directory, count: 16), run = directory.file("run").path
        let trained = try DarkroomBinary.run(["train", "--data", data, "--out", run, "--epochs", "1", "--batch", "8", "--nz", "8", "--ngf", "8",
                                              "--ndf", "8", "--preset", "quality", "--r1", "0.5", "--instance-noise", "0.2"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/config.json"))) as! [String: Any]
        let options = config["options"] as? [String: Any] ?? config
        XCTAssertEqual(options["preset"] as? String, "quality")
        let step = options["step"] as! [String: Any]
        XCTAssertEqual(step["instance_noise"] as? Double ?? -1, 0.2, accuracy: 1e-6, "a flag the preset leaves alone")
        XCTAssertEqual(step["r1"] as? Double ?? -1, 0.5, accuracy: 1e-6, "an explicit flag overrides the preset's R1")
        XCTAssertEqual(options["ema_kimg"] as? Double, 10, "the preset's generator average")
        XCTAssertEqual(step["fake_class_weight"] as? Double, 0, "the preset's fake class weight (used with --labels)")

        let bench = try DarkroomBinary.run(["bench", "train-step", "--size", "32", "--channels", "1", "--batch", "8", "--iterations", "1",
                                            "--loss", "wgan-gp", "--r1", "1", "--minibatch-std", "--replay", "0.5", "--unroll", "1",
                                            "--feature-matching", "--generator", "upsample"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("\"img_per_s\""), bench.stdout)

        let bad = try DarkroomBinary.run(["train", "--data", data, "--out", directory.file("bad").path, "--replay", "2"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--replay"), bad.stderr)
    }
}

/// `count` 32 px gray pattern images, catalogued and prepared by the CLI; returns the dataset folder.
func preparedPatterns(in directory: TemporaryDirectory, count: Int) throws -> String {
    for index in 0..<count {
        try directory.write("photos/\(index).png", try PNG.encode(Pictures.pattern(width: 32, height: 32, channels: 1, seed: index)))
    }
    let db = directory.file("c.sqlite").path, data = directory.file("data").path
    XCTAssertEqual(try DarkroomBinary.run(["catalog", directory.file("photos").path, "--db", db]).status, 0)
    XCTAssertEqual(try DarkroomBinary.run(["prepare", "--db", db, "--size", "32", "--channels", "1", "--out", data]).status, 0)
    return data
}

final class PrecisionCLITests: XCTestCase {
    /// `--precision bf16` reaches the benchmark (its JSON says which ran); where oneDNN may not use
    /// AVX512-BF16 (capped here with ONEDNN_MAX_CPU_ISA, as on a CPU without it) it runs in fp32
    /// with one note; a bad value names the flag and exits non-zero.
    func testPrecisionFlagFallsBackWithANoteAndRejectsBadValues() throws {
        let arguments = ["bench", "train-step", "--size", "32", "--channels", "1", "--batch", "8", "--iterations", "1", "--ngf", "8", "--ndf", "8",
                         "--precision", "bf16"]
        var environment = ProcessInfo.processInfo.environment
        environment["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE"
        let capped = try Process.runCapturing(DarkroomBinary.path, arguments, environment: environment)
        XCTAssertEqual(capped.status, 0, capped.stderr)
        XCTAssertEqual(try precision(capped.stdout), "fp32")
        XCTAssertEqual(capped.stderr.components(separatedBy: "AVX512-BF16").count - 1, 1, capped.stderr)

        let native = try DarkroomBinary.run(arguments)
        XCTAssertEqual(native.status, 0, native.stderr)
        let expected = Precision.bf16Supported ? "bf16" : "fp32"
        XCTAssertEqual(try precision(native.stdout), expected)

        let bad = try DarkroomBinary.run(["bench", "generate", "--size", "32", "--channels", "1", "--precision", "fp16"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--precision"), bad.stderr)
    }

    private func precision(_ json: String) throws -> String? {
        (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["precision"] as? String
    }
}
