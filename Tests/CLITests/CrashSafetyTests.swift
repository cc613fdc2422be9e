import Catalog
import Dataset
import Formats
import Foundation
import Imaging
import TestSupport
import XCTest

/// kill -9 at random moments of every stage, many times. After each kill: the catalogue passes
/// `PRAGMA integrity_check` and no half-written output passes for a finished one. Then a re-run
/// of the same command completes, with the same results as a run that was never interrupted.
final class CrashSafetyTests: XCTestCase {
    var directory: TemporaryDirectory!
    private var random = SeededRandom(seed: 2024)

    override func setUpWithError() throws { directory = try TemporaryDirectory("crash") }
    override func tearDown() { directory.remove() }

    /// Runs `arguments` to the end and returns how long it took (the window kills are drawn from).
    @discardableResult
    func runToEnd(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let started = Date()
        let result = try DarkroomBinary.run(arguments)
        XCTAssertEqual(result.status, 0, "\(arguments.first ?? ""): \(result.stderr)", file: file, line: line)
        return Date().timeIntervalSince(started)
    }

    /// Starts `arguments` `attempts` times and kills each run with SIGKILL at a random moment of
    /// `window` seconds (asked again for every attempt), checking `invariant` after each kill.
    /// Returns the kills that landed while the command was still running (a kill after it
    /// finished proves nothing).
    func killAtRandomMoments(_ arguments: [String], attempts: Int, window: @autoclosure () -> Double, invariant: () throws -> Void) throws -> Int {
        var landed = 0
        for _ in 0..<attempts {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DarkroomBinary.path)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(useconds_t(random.nextUniform() * Float(window()) * 1_000_000))
            if process.isRunning { landed += 1 }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try invariant()
        }
        return landed
    }

    /// The files under `path` (or the file itself) by relative path.
    func files(under path: String) throws -> [String: Data] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [:] }
        if !isDirectory.boolValue { return ["": try Data(contentsOf: URL(fileURLWithPath: path))] }
        var contents: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let full = path + "/" + relative
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                contents[relative] = try Data(contentsOf: URL(fileURLWithPath: full))
            }
        }
        return contents
    }

    func makePictures(_ count: Int) throws -> String {
        for index in 0..<count {
            let picture = Pictures.pattern(width: 24 + index % 9, height: 20 + index % 7, channels: 1, seed: index)
            try directory.write("photos/\(index % 5)/\(index).png", try PNG.encode(picture))
        }
        return directory.file("photos").path
    }

    func testCatalogPrepareAndGenerateSurviveKillsAtRandomMoments() throws {
        let photos = try makePictures(900)

        // catalog
        let referenceDB = directory.file("reference.sqlite").path, db = directory.file("killed.sqlite").path
        let catalogSeconds = try runToEnd(["catalog", photos, "--db", referenceDB])
        let catalogKills = try killAtRandomMoments(["catalog", photos, "--db", db, "--batch-size", "32"], attempts: 8, window: catalogSeconds) {
            if FileManager.default.fileExists(atPath: db) { XCTAssertEqual(try CatalogDatabase(path: db).integrityCheck(), "ok") }
        }
        try runToEnd(["catalog", photos, "--db", db])
        XCTAssertEqual(try CatalogDatabase(path: db).summary(), try CatalogDatabase(path: referenceDB).summary())
        XCTAssertEqual(try CatalogDatabase(path: db).listing(.nearDuplicates), try CatalogDatabase(path: referenceDB).listing(.nearDuplicates))

        // prepare: DIR is absent or a complete dataset, whatever the moment
        let referenceData = directory.file("reference-data").path, data = directory.file("data").path
        let prepare = ["prepare", "--size", "32", "--channels", "1"]
        let prepareSeconds = try runToEnd(prepare + ["--db", referenceDB, "--out", referenceData])
        try runToEnd(prepare + ["--db", db, "--out", data, "--limit", "10"])  // an older dataset in the way
        let prepareKills = try killAtRandomMoments(prepare + ["--db", db, "--out", data], attempts: 8, window: prepareSeconds) {
            let manifest = try DatasetManifest.load(from: data)  // never missing, never partial
            let loader = try BatchLoader(directory: data, batchSize: 64, seed: 0, dropLast: false, shuffle: false)
            XCTAssertEqual(loader.epoch(0).map(\.count).reduce(0, +), manifest.count)
            XCTAssertEqual(try CatalogDatabase(path: db).integrityCheck(), "ok")
        }
        try runToEnd(prepare + ["--db", db, "--out", data])
        var expected = try files(under: referenceData), actual = try files(under: data)
        XCTAssertEqual(try DatasetManifest.load(from: data).shards, try DatasetManifest.load(from: referenceData).shards)
        (expected["dataset.json"], actual["dataset.json"]) = (nil, nil)  // they name their catalogue and time
        XCTAssertEqual(actual, expected)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("data.") }
        XCTAssertEqual(leftovers, [], "killed runs' staging folders are cleaned up")

        // train a tiny model to generate from
        let run = directory.file("run").path
        try runToEnd(["train", "--data", referenceData, "--out", run, "--epochs", "1", "--batch", "32", "--nz", "8", "--ngf", "8", "--ndf", "8"])

        // generate: metadata.jsonl, written last, is there only when every image is
        let referenceImages = directory.file("reference-generated").path, generated = directory.file("generated").path
        let generate = ["generate", "--model", run, "--count", "1500", "--batch", "50"]
        let generateSeconds = try runToEnd(generate + ["--out", referenceImages])
        let generateKills = try killAtRandomMoments(generate + ["--out", generated], attempts: 8, window: generateSeconds) {
            guard let metadata = try? String(contentsOfFile: generated + "/metadata.jsonl", encoding: .utf8) else { return }
            let names = metadata.split(separator: "\n").map { try! JSONDecoder().decode(GeneratedImageName.self, from: Data($0.utf8)).file_name }
            XCTAssertEqual(names.count, 1500)
            XCTAssertEqual(try Npy.read(path: generated + "/latents.npy").header.shape, [1500, 8])
            for name in names { XCTAssertNoThrow(try ImageCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: generated + "/" + name))))) }
            try FileManager.default.removeItem(atPath: generated)  // finished before the kill: start the next attempt afresh
        }
        try runToEnd(generate + ["--out", generated])
        XCTAssertEqual(try files(under: generated), try files(under: referenceImages))

        XCTAssertGreaterThan(catalogKills, 2, "too few kills landed mid-catalog")
        XCTAssertGreaterThan(prepareKills, 2, "too few kills landed mid-prepare")
        XCTAssertGreaterThan(generateKills, 2, "too few kills landed mid-generate")
    }

    func testTrainingResumesToTheSameWeightsAfterKillsAtRandomMoments() throws {
        let photos = try makePictures(256)
        let db = directory.file("catalog.sqlite").path, data = directory.file("data").path
        try runToEnd(["catalog", photos, "--db", db])
        try runToEnd(["prepare", "--db", db, "--size", "32", "--channels", "1", "--out", data])
        let train = ["train", "--data", data, "--epochs", "6", "--batch", "32", "--nz", "8", "--ngf", "8", "--ndf", "8", "--log-every", "1"]
        let reference = directory.file("reference-run").path, run = directory.file("run").path
        let seconds = try runToEnd(train + ["--out", reference])
        // First a kill after some iterations were logged but before the first checkpoint: the
        // next run starts over and must not keep those lines.
        let early = Process()
        early.executableURL = URL(fileURLWithPath: DarkroomBinary.path)
        early.arguments = train + ["--out", run, "--resume"]
        early.standardError = FileHandle.nullDevice
        try early.run()
        let metricsPath = run + "/metrics.jsonl", deadline = Date().addingTimeInterval(30)
        while Date() < deadline && ((try? String(contentsOfFile: metricsPath, encoding: .utf8))?.isEmpty ?? true) { usleep(2_000) }
        kill(early.processIdentifier, SIGKILL)
        early.waitUntilExit()
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/checkpoints/latest.safetensors"), "the early kill came too late")
        // Each resume starts from the last checkpoint, so the work left shrinks with every kill: kill
        // moments within half of an uninterrupted run's time for the iterations not yet logged (at
        // least that many are left) land mid-training even when the machine's load changes between
        // the runs. Once one came after the run finished, every later attempt would be a no-op.
        let iterations = 6 * 8
        func logged() -> Int { (try? String(contentsOfFile: metricsPath, encoding: .utf8))?.split(separator: "\n").count ?? 0 }
        let kills = try killAtRandomMoments(train + ["--out", run, "--resume"], attempts: 8,
                                            window: seconds / 2 * Double(max(iterations - logged(), 1)) / Double(iterations)) {
            let latest = run + "/checkpoints/latest.safetensors"
            guard FileManager.default.fileExists(atPath: latest) else { return }
            XCTAssertNoThrow(try Safetensors.read(path: latest), "a checkpoint is complete or absent")
        }
        try runToEnd(train + ["--out", run, "--resume"])
        let final = try Safetensors.read(path: run + "/checkpoints/latest.safetensors").tensors
        let expected = try Safetensors.read(path: reference + "/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(Set(final.keys), Set(expected.keys))
        for (name, tensor) in expected { XCTAssertEqual(final[name]?.bytes, tensor.bytes, "\(name) differs from the uninterrupted run") }
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, iterations, "every iteration logged once, none twice")
        XCTAssertGreaterThan(kills, 2, "too few kills landed mid-training")
    }
}

extension CrashSafetyTests {
    /// `darkroom run` killed anywhere in its pipeline, many times: the re-run finishes with the
    /// outputs of a pipeline that was never interrupted.
    func testPipelineRunSurvivesKillsAtRandomMoments() throws {
        let photos = try makePictures(200)
        func pipeline(_ name: String) throws -> (yaml: String, folder: String) {
            let folder = directory.file(name).path
            let yaml = """
                name: \(name)
                stages:
                  catalog: {root: \(photos), db: \(folder)/c.sqlite}
                  prepare: {size: 32, channels: 1, out: \(folder)/data}
                  train: {out: \(folder)/run, epochs: 3, batch: 32, nz: 8, ngf: 8, ndf: 8}
                  generate: {count: 300, out: \(folder)/gen}
                  embed: {out: \(folder)/features, layers: last}
                """
            return (try directory.write("\(name).yaml", Array(yaml.utf8)).path, folder)
        }
        let reference = try pipeline("reference"), killed = try pipeline("killed")
        let seconds = try runToEnd(["run", reference.yaml])
        // Each re-run skips the stages already done, so the work left shrinks with every kill; kill
        // moments within the first half of an uninterrupted run's time still land mid-pipeline when
        // the machine is busier during the reference run than during the kills.
        let kills = try killAtRandomMoments(["run", killed.yaml], attempts: 8, window: seconds / 2) {
            let db = killed.folder + "/c.sqlite"
            if FileManager.default.fileExists(atPath: db) { XCTAssertEqual(try CatalogDatabase(path: db).integrityCheck(), "ok") }
        }
        try runToEnd(["run", killed.yaml])
        for output in ["gen/images", "gen/latents.npy", "features.npy", "data/index.csv"] {
            let a = try files(under: reference.folder + "/" + output), b = try files(under: killed.folder + "/" + output)
            XCTAssertEqual(a, b, "\(output) differs from the uninterrupted pipeline's")
        }
        // The checkpoints hold the same tensors (their metadata names their own dataset folder).
        let a = try Safetensors.read(path: reference.folder + "/run/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: killed.folder + "/run/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(a.mapValues(\.bytes), b.mapValues(\.bytes))
        XCTAssertGreaterThan(kills, 2, "too few kills landed mid-pipeline")
    }
}

private struct GeneratedImageName: Decodable { var file_name: String }
