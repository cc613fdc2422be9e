import Foundation
@testable import Pipeline
import TestSupport
import XCTest

final class PipelineSpecTests: XCTestCase {
    /// Every flag a stage's command takes is an option of that stage in a pipeline, but for those a
    /// pipeline sets itself or has no use for: a new CLI flag cannot be left out of `stageOptions`.
    func testEveryStageTakesItsCommandsFlags() throws {
        let notInPipelines: Set<String> = ["help", "version", "json", "resume", "overwrite", "interpolate"]
        // dataset's stage runs `darkroom datasets RECIPE`: its options are each recipe's, not one command's.
        for stage in StageName.allCases where stage != .dataset {
            let help = try DarkroomBinary.run([stage.rawValue, "--help"])
            XCTAssertEqual(help.status, 0, help.stderr)
            let options = help.stdout.components(separatedBy: "OPTIONS:").last ?? ""
            // The flag an option's line starts with, two spaces in ("  --name <value>", "  -h, --help"):
            // wrapped help text is indented further and may name other commands' flags.
            let flags = options.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("  -"), let flag = line.split(separator: " ").first(where: { $0.hasPrefix("--") }) else { return nil }
                return String(flag.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
            }
            XCTAssertFalse(flags.isEmpty, "\(stage)")
            for flag in flags where !notInPipelines.contains(flag) {
                XCTAssertNotNil(stageOptions[stage]?[flag], "darkroom \(stage.rawValue) --\(flag) is not a pipeline option")
            }
        }
    }

    func testStagesTakeEarlierOutputsAndBecomeCLIArguments() throws {
        let spec = try PipelineSpec.parse("""
            name: demo
            stages:
              dataset: {recipe: fashion-mnist, out: d, limit: 20}
              catalog: {db: c.sqlite, follow_symlinks: true}
              prepare: {size: 32, channels: 1, out: p}
              train: {out: r, epochs: 2, lr: 0.0001}
              embed: {out: f}
              probe: {out: probe.json}
              report: {out: r.html}
            """, path: "demo.yaml")
        XCTAssertEqual(spec.name, "demo")
        XCTAssertEqual(spec.stages.map(\.name), [.dataset, .catalog, .prepare, .train, .embed, .probe, .report])
        XCTAssertEqual(spec.arguments(for: spec.stage(.report)!), ["--out", "r.html", "--db", "c.sqlite", "--run", "r", "--probe", "probe.json"])
        XCTAssertEqual(spec.arguments(for: spec.stage(.dataset)!), ["fashion-mnist", "--out", "d", "--limit", "20"])
        XCTAssertEqual(spec.arguments(for: spec.stage(.catalog)!), ["d/images", "--db", "c.sqlite", "--follow-symlinks"])
        XCTAssertEqual(spec.stage(.prepare)?.value("db"), "c.sqlite")
        XCTAssertEqual(spec.stage(.train)?.value("data"), "p")
        XCTAssertEqual(spec.stage(.embed)?.value("model"), "r")
        XCTAssertEqual(spec.stage(.embed)?.value("data"), "p")
        XCTAssertEqual(spec.stage(.probe)?.value("features"), "f")
        XCTAssertEqual(spec.stage(.probe)?.value("labels"), "d/labels.csv")
        XCTAssertEqual(spec.database, "c.sqlite")
    }

    private func error(_ yaml: String) -> String {
        do { _ = try PipelineSpec.parse(yaml, path: "p.yaml"); return "no error" } catch { return "\(error)" }
    }

    func testEvaluateSitsBetweenTrainAndGenerateAndJudgesTheRunsData() throws {
        let spec = try PipelineSpec.parse("""
            name: judged
            stages:
              prepare: {db: c.sqlite, size: 32, channels: 1, out: p}
              train: {out: r, kimg: 10, eval-every: 2}
              evaluate: {count: 500, no-two-sample: true}
              generate: {checkpoint: best, count: 10, out: g, filter: 0.2}
            """, path: "judged.yaml")
        XCTAssertEqual(spec.stages.map(\.name), [.prepare, .train, .evaluate, .generate])
        XCTAssertEqual(spec.arguments(for: spec.stage(.evaluate)!), ["--count", "500", "--no-two-sample", "--model", "r", "--data", "p"])
        XCTAssertEqual(spec.arguments(for: spec.stage(.train)!), ["--out", "r", "--kimg", "10", "--eval-every", "2", "--data", "p"])
        XCTAssertEqual(spec.arguments(for: spec.stage(.generate)!), ["--checkpoint", "best", "--count", "10", "--out", "g", "--filter", "0.2", "--model", "r"])
        XCTAssertThrowsError(try PipelineSpec.parse("""
            name: late
            stages:
              generate: {model: r, out: g}
              evaluate: {model: r}
            """, path: "late.yaml")) { XCTAssertTrue("\($0)".contains("must come before")) }
    }

    func testMistakesAreReportedWithTheirLine() {
        XCTAssertEqual(error("stages:\n  catalog:\n    root: x\n    jobz: 2\n").prefix(10), "p.yaml:4: ")
        XCTAssertTrue(error("stages:\n  catalog:\n    root: x\n    jobz: 2\n").contains("unknown option `jobz`"))
        XCTAssertTrue(error("stages:\n  trian: {}\n").hasPrefix("p.yaml:2: unknown stage `trian`"))
        XCTAssertTrue(error("stages:\n  prepare:\n    db: x\n    size: big\n").hasPrefix("p.yaml:4: `size` must be an integer"))
        XCTAssertTrue(error("stages:\n  catalog:\n    root: x\n    follow-symlinks: maybe\n").contains("true or false"))
        XCTAssertTrue(error("stages:\n  prepare: {db: x, size: 32, channels: 1, out: o}\n  catalog: {root: r}\n").contains("must come before"))
        XCTAssertTrue(error("stages:\n  train: {out: r}\n").contains("needs `data`"))
        XCTAssertTrue(error("stages: [1, 2\n").contains("not valid YAML"))
        XCTAssertTrue(error("name: x\nsteps: {}\n").hasPrefix("p.yaml:2: unknown top-level key"))
    }

    func testFewLabelsStagesTakeTheRecipesLabelsAndTheLabellersOutputs() throws {
        let spec = try PipelineSpec.parse("""
            name: few
            stages:
              dataset: {recipe: fashion-mnist, out: d, few-labels: 100}
              catalog: {db: c.sqlite}
              prepare: {size: 32, channels: 1, out: p}
              label: {out: all.csv, save-labeller: l.safetensors}
              train: {out: r, projection: true}
              generate: {per-class: 10, out: g}
              utility: {out: u.json}
              report: {out: r.html}
            """, path: "few.yaml")
        XCTAssertEqual(spec.stages.map(\.name), [.dataset, .catalog, .prepare, .label, .train, .generate, .utility, .report])
        XCTAssertEqual(spec.arguments(for: spec.stage(.dataset)!), ["fashion-mnist", "--out", "d", "--few-labels", "100"])
        XCTAssertEqual(spec.arguments(for: spec.stage(.label)!), ["--out", "all.csv", "--save-labeller", "l.safetensors", "--data", "p",
                                                                  "--labels", "d/few-labels.csv", "--test-labels", "d/held-out-labels.csv"])
        XCTAssertEqual(spec.stage(.train)?.value("labels"), "all.csv", "G learns from every image's label")
        XCTAssertEqual(spec.arguments(for: spec.stage(.generate)!), ["--per-class", "10", "--out", "g", "--model", "r", "--labeller", "l.safetensors"])
        XCTAssertEqual(spec.stage(.utility)?.value("labels"), "d/few-labels.csv", "the real-only classifier learns from the given labels, not the labeller's")
        XCTAssertEqual(spec.stage(.utility)?.value("test-labels"), "d/held-out-labels.csv")
        XCTAssertEqual(spec.stage(.utility)?.value("labeller"), "l.safetensors")
        XCTAssertEqual(spec.stage(.utility)?.value("model"), "r")
        XCTAssertEqual(spec.stage(.report)?.value("utility"), "u.json")
        let drawing = try PipelineSpec.parse("""
            stages:
              dataset: {recipe: fashion-mnist, out: d, few-labels: 100}
              prepare: {db: c, size: 32, channels: 1, out: p}
              label: {out: all.csv, save-labeller: l.safetensors}
              train: {out: r, projection: true, labeller: l.safetensors}
            """, path: "drawing.yaml")
        XCTAssertEqual(drawing.stage(.train)?.value("labels"), "d/few-labels.csv", "the labeller draws the classes label's CSV would fix")
        XCTAssertTrue(drawing.arguments(for: drawing.stage(.train)!).contains("--labeller"))

        let own = try PipelineSpec.parse("""
            stages:
              prepare: {db: c, size: 32, channels: 1, out: p}
              label: {labels: mine.csv, test-labels: held.csv, out: a.csv}
              train: {out: r}
              generate: {count: 5, out: g}
              utility: {}
            """, path: "own.yaml")
        XCTAssertEqual(own.stage(.utility)?.value("labels"), "mine.csv")
        XCTAssertEqual(own.stage(.utility)?.value("test-labels"), "held.csv")
        XCTAssertNil(own.stage(.utility)?.value("labeller"), "no labeller was saved")
        XCTAssertNil(own.stage(.generate)?.value("labeller"), "an unconditional draw takes no labeller")
        XCTAssertEqual(own.stage(.train)?.value("labels"), "a.csv")

        XCTAssertTrue(error("stages:\n  prepare: {db: c, size: 32, channels: 1, out: p}\n  label: {out: a.csv}\n").contains("stage label needs `labels`"))
        XCTAssertTrue(error("stages:\n  train: {data: p, out: r}\n  utility: {}\n").contains("stage utility needs `labels`"))
        XCTAssertTrue(error("stages:\n  utility: {model: r, labels: l.csv}\n  train: {data: p, out: r}\n").contains("must come before"))
    }

    func testShippedPipelinesParse() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Pipelines").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertEqual(Set(files), ["quickstart.yaml", "fashion-mnist.yaml", "folder.yaml", "few-labels.yaml"])
        for file in files { XCTAssertNoThrow(try PipelineSpec.load(path: directory.appendingPathComponent(file).path), file) }
        // The few-labels set is drawn with a quarter of each class's candidates between classes, and
        // utility judges the folder generate wrote, with its rows' soft labels.
        let fewLabels = try PipelineSpec.load(path: directory.appendingPathComponent("few-labels.yaml").path)
        let generate = try XCTUnwrap(fewLabels.stage(.generate).map { fewLabels.arguments(for: $0) })
        XCTAssertEqual(value(of: "--class-mix", in: generate), "0.25")
        XCTAssertEqual(value(of: "--psi", in: generate), "1.5")
        XCTAssertTrue(generate.contains("--labeller"), "mixing needs the labeller")
        let utility = try XCTUnwrap(fewLabels.stage(.utility).map { fewLabels.arguments(for: $0) })
        XCTAssertEqual(value(of: "--set", in: utility), fewLabels.stage(.generate)?.value("out"))
        XCTAssertTrue(utility.contains("--soft-labels"))
        XCTAssertFalse(utility.contains("--class-mix") || utility.contains("--filter") || utility.contains("--per-class"),
                       "utility refuses drawing options with --set")
        // Its generator learns each class from the labeller's probabilities, on top of the few labels.
        let train = try XCTUnwrap(fewLabels.stage(.train).map { fewLabels.arguments(for: $0) })
        XCTAssertEqual(value(of: "--labeller", in: train), fewLabels.stage(.label)?.value("save-labeller"))
        XCTAssertEqual(value(of: "--labels", in: train), "out/few-labels/dump/few-labels.csv")
        // 15 epochs, where an independent classifier's read of the set stopped improving (Docs/utility-fmnist.md).
        XCTAssertEqual(value(of: "--epochs", in: train), "15")
        // Its labeller learns from all 1,000 labels (measured on the held-out ones instead), with a
        // CNN two layers deeper at each resolution and FlexMatch's class thresholds: the set reads
        // 0.2 (hard labels) to 0.5 (soft) points better to an independent classifier (Docs/utility-fmnist.md).
        let label = try XCTUnwrap(fewLabels.stage(.label).map { fewLabels.arguments(for: $0) })
        XCTAssertEqual(value(of: "--validation-fraction", in: label), "0")
        XCTAssertEqual(value(of: "--depth", in: label), "2")
        XCTAssertEqual(value(of: "--thresholds", in: label), "flexmatch")
        XCTAssertEqual(value(of: "--suggest", in: label), "500")
        XCTAssertEqual(value(of: "--suggest-out", in: label), "out/few-labels/to-label.csv")
        XCTAssertEqual(value(of: "--test-labels", in: label), "out/few-labels/dump/held-out-labels.csv")
    }

    /// The value that follows `flag` in a stage's arguments.
    private func value(of flag: String, in arguments: [String]) -> String? {
        arguments.firstIndex(of: flag).map { arguments[$0 + 1] }
    }
}

final class PipelineOverrideTests: XCTestCase {
    private let yaml = """
        stages:
          catalog: {root: /path/to/photos, db: out/c.sqlite}
          prepare: {size: 64, channels: 3, out: out/d, background: black}
          train: {out: out/r, epochs: 10}
        """

    func testSetOverridesAnyStageOptionBeforeStagesAreConnected() throws {
        let spec = try PipelineSpec.parse(yaml, path: "f.yaml", overrides: ["catalog.root=/data/icons", "catalog.db=elsewhere.sqlite",
                                                                         "train.batch=32", "prepare.size=32"])
        XCTAssertEqual(spec.arguments(for: spec.stage(.catalog)!).first, "/data/icons")
        XCTAssertEqual(spec.stage(.prepare)?.value("db"), "elsewhere.sqlite", "a later stage takes the overridden output")
        XCTAssertEqual(spec.stage(.prepare)?.value("size"), "32")
        XCTAssertEqual(spec.stage(.train)?.value("batch"), "32", "`_` may stand for `-`, and a new option is added")
        XCTAssertEqual(spec.stage(.catalog)?.value("background"), "black", "the catalogue composites alpha as prepare will")
        let home = try PipelineSpec.parse(yaml, path: "f.yaml", overrides: ["catalog.root=~/photos"])
        XCTAssertEqual(home.stage(.catalog)?.value("root"), FileManager.default.homeDirectoryForCurrentUser.path + "/photos")
    }

    private func error(_ overrides: [String]) -> String {
        do { _ = try PipelineSpec.parse(yaml, path: "f.yaml", overrides: overrides); return "no error" } catch { return "\(error)" }
    }

    func testWrongKeysAndValuesAreErrorsNamingThem() {
        XCTAssertTrue(error(["catalog.rot=/x"]).contains("--set catalog.rot=/x: unknown option `rot` for stage catalog"), error(["catalog.rot=/x"]))
        XCTAssertTrue(error(["prepare.size=big"]).contains("--set prepare.size=big: `size` must be an integer"))
        XCTAssertTrue(error(["embed.out=f"]).contains("this pipeline has no embed stage"))
        XCTAssertTrue(error(["catalg.root=x"]).contains("unknown stage `catalg`"))
        XCTAssertTrue(error(["catalog.root"]).contains("expected STAGE.OPTION=VALUE"))
    }
}
