import Foundation
import Formats
import Imaging
@testable import GAN
@testable import NN
import TestSupport
import XCTest

/// Class-conditional training (train --labels): G's class input, D's classifier head (AC-GAN),
/// the labelled images beside each batch, per-class export, and the utility report.
final class ConditionalTests: XCTestCase {
    var directory: TemporaryDirectory!
    override func setUpWithError() throws { directory = try TemporaryDirectory("conditional") }
    override func tearDown() { directory.remove() }

    private var conditional: DCGANConfiguration {
        var configuration = DCGANConfiguration(imageSize: 32, channels: 1, nz: 8, ngf: 4, ndf: 4)
        configuration.classes = ["circle", "square", "stripe"]
        return configuration
    }

    /// Labels for the tiny dataset's 48 pattern images: classes by seed, a third unlabelled.
    private func writeLabels(_ data: String, labelled: Int = 32) throws -> String {
        let index = try DatasetIndexFile.rows(data)
        var text = "path,label\n"
        for (row, path) in index.prefix(labelled) { text += "\(path),\(["circle", "square", "stripe"][row % 3])\n" }
        let path = directory.file("labels.csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testGeneratorInputCarriesTheClassAsAOneHotRow() {
        let input = conditional.generatorInput(latents: (0..<16).map(Float.init), classes: [2, 0])
        XCTAssertEqual(input.shape, [2, 11, 1, 1])
        XCTAssertEqual(Array(input.values[0..<11]), [0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 1])
        XCTAssertEqual(Array(input.values[11..<22]), [8, 9, 10, 11, 12, 13, 14, 15, 1, 0, 0])
        let balanced = conditional.generatorInput(latents: [Float](repeating: 0, count: 32))
        XCTAssertEqual((0..<4).map { n in (0..<3).first { balanced.values[n * 11 + 8 + $0] == 1 }! }, [0, 1, 2, 0])
        XCTAssertEqual(DCGAN.generator(conditional, backend: .fast).forward(input).shape, [2, 1, 32, 32])
    }

    /// The classifier head's cross-entropy back-propagates through D as central differences of it
    /// say: to the head's weights, to a trunk weight, alone and added to the logits' gradient.
    func testClassifierGradientMatchesFiniteDifferences() {
        let d = Discriminator(conditional, backend: .fast)
        var random = SeededRandom(seed: 5)
        for parameter in d.parameters where parameter.value.shape.count == 4 {
            Initialization.normal(parameter.value, mean: 0, standardDeviation: 0.15, random: &random)
        }
        let x = Tensor(shape: [4, 1, 32, 32], values: (0..<4096).map { _ in random.nextUniform() * 2 - 1 })
        let labels = [0, 2, -1, 1]
        d.freezesRunningStatistics = true
        func objective() -> Double {
            let logits = d.forward(x).plain().values
            let classLoss = Loss.softmaxCrossEntropy(d.classify(), labels: labels).value
            return Double(classLoss) + logits.reduce(0) { $0 + Double($1) }
        }
        d.zeroGradients()
        let logits = d.forward(x)
        let ones = Tensor(shape: logits.shape)
        ones.fill(1)
        let classLoss = Loss.softmaxCrossEntropy(d.classify(), labels: labels)
        _ = d.backward(ones, classGradient: classLoss.gradient)
        d.freezesActivationPattern = true
        let head = d.classifier!.parameters[0], trunk = d.parameters[0]
        for (parameter, indices) in [(head, [0, 100, 700]), (trunk, [3, 40])] {
            let analytic = parameter.gradient.values
            for index in indices {
                let saved = parameter.value[index]
                parameter.value[index] = saved + 1e-2
                let plus = objective()
                parameter.value[index] = saved - 1e-2
                let minus = objective()
                parameter.value[index] = saved
                XCTAssertEqual(Double(analytic[index]), (plus - minus) / 2e-2, accuracy: 3e-2 * max(abs(Double(analytic[index])), 1e-2),
                               "\(parameter.name)[\(index)]")
            }
        }
    }

    /// A conditional run stopped and resumed equals one run straight; the checkpoint holds the
    /// classifier head and G's wider input; the grid has a row per class; the log has class_loss.
    /// Four labelled images ride beside each batch of 8.
    func testConditionalRunResumesExactlyAndRecordsItsClasses() throws {
        var labels = ""
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5) { options in
            if labels.isEmpty { labels = try! self.writeLabels(options.data) }
            options.labels = labels
            options.labelledBatch = 4
        }
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(a["discriminator.classifier.weight"]?.shape, [3, 32, 4, 4])
        XCTAssertEqual(a["discriminator.classifier.weight"], b["discriminator.classifier.weight"])
        XCTAssertEqual(a["main.0.weight"]?.shape, [16 + 3, 32, 4, 4], "G's input: nz, then the one-hot class")
        XCTAssertEqual(a["main.0.weight"], b["main.0.weight"])
        let (configuration, _, _, _) = try Checkpoint.configuration(at: straight + "/checkpoints/latest.safetensors")
        XCTAssertEqual(configuration.classes, ["circle", "square", "stripe"])
        let grid = try PNG.decode(Array(Data(contentsOf: URL(fileURLWithPath: straight + "/samples/epoch-002.png"))))
        XCTAssertEqual(grid.height, 3 * 34 + 2, "a row of 8 per class")
        let metrics = try String(contentsOfFile: straight + "/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"class_loss\""))
    }

    /// Pseudo-labels: D's classifier is measured on the held-out labelled images every check; once
    /// it is good enough (here: any accuracy) confident unlabelled images get its class. The state
    /// survives a stop and resume exactly.
    func testPseudoLabelsFollowTheHeldOutCheckAndResumeExactly() throws {
        var labels = ""
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5) { options in
            if labels.isEmpty { labels = try! self.writeLabels(options.data, labelled: 20) }
            options.labels = labels
            options.step.pseudoLabels = 0.2
            options.pseudoLabelCheck = 3
            options.pseudoLabelAccuracy = 0
        }
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let lines = try String(contentsOfFile: straight + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        XCTAssertNil(lines[0].pseudoLabelled, "off before the first check")
        XCTAssertEqual(lines.compactMap(\.heldOutClassAccuracy).count, lines.count / 3)
        XCTAssertGreaterThan(lines.compactMap(\.pseudoLabelled).reduce(0, +), 0)
        let resumedLines = try String(contentsOfFile: resumed + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        XCTAssertEqual(resumedLines.map(\.pseudoLabelled), lines.map(\.pseudoLabelled))
    }

    /// D's classifier learns from the fakes' requested classes (AC-GAN) unless their weight is 0:
    /// then, with no labelled real image in the batch, a step leaves the head's weights as they
    /// were, while the trunk still learns the adversarial loss; G still gets the class loss.
    func testFakeClassWeightZeroTeachesDsClassifierFromRealLabelsOnly() {
        var random = SeededRandom(seed: 9)
        let real = Tensor(shape: [6, 1, 32, 32], values: (0..<6144).map { _ in random.nextUniform() * 2 - 1 })
        let unlabelled = [Int](repeating: -1, count: 6)
        func headAndTrunkMove(fakeClassWeight: Float?) -> (head: Bool, trunk: Bool, classLoss: Float?) {
            var options = StepOptions()
            options.fakeClassWeight = fakeClassWeight
            let trainer = DCGANTrainer(configuration: conditional, options: options, seed: 3)
            let head = trainer.discriminator.classifier!.parameters[0].value.values, trunk = trainer.discriminator.parameters[0].value.values
            let metrics = trainer.step(real: real, classes: unlabelled)
            return (trainer.discriminator.classifier!.parameters[0].value.values != head,
                    trainer.discriminator.parameters[0].value.values != trunk, metrics.classLoss)
        }
        let acgan = headAndTrunkMove(fakeClassWeight: nil), realOnly = headAndTrunkMove(fakeClassWeight: 0)
        XCTAssertTrue(acgan.head && acgan.trunk)
        XCTAssertGreaterThan(acgan.classLoss ?? 0, 0)
        XCTAssertFalse(realOnly.head, "no labelled real image, no fake term: the head's gradient is zero")
        XCTAssertTrue(realOnly.trunk)
        XCTAssertEqual(realOnly.classLoss, 0, "only the (empty) real term")
    }

    func testLabelledImagesBesideEachBatchDependOnlyOnTheIteration() throws {
        let data = try writeTinyDataset(directory)
        let rowClasses = (0..<48).map { $0 < 10 ? $0 % 3 : -1 }
        let labelled = try LabelledImages(dataset: data, rowClasses: rowClasses, perBatch: 4, seed: 1)
        XCTAssertEqual(labelled.count, 10)
        XCTAssertEqual(labelled.classes, (0..<10).map { $0 % 3 })
        let first = labelled.batch(iteration: 7), again = labelled.batch(iteration: 7)
        XCTAssertEqual(first.classes, again.classes)
        XCTAssertEqual(first.images, again.images)
        XCTAssertEqual(first.images.count, 4 * 1024)
        // Five batches of 4 cover two passes over the 10: each image twice.
        let seen = (0..<5).flatMap { labelled.batch(iteration: $0).classes }
        XCTAssertEqual(seen.filter { $0 == 0 }.count, 8)
        XCTAssertEqual(LabelledImages.defaultPerBatch(batch: 64, labelled: 1000, total: 60000, sampleLength: 1024), 16)
        XCTAssertEqual(LabelledImages.defaultPerBatch(batch: 64, labelled: 40000, total: 60000, sampleLength: 1024), 0)
    }

    /// generate --per-class writes the ImageFolder layout with each row's label and confidence;
    /// utility trains its classifiers and reports every accuracy; an unconditional model is refused.
    func testPerClassExportAndUtilityReport() throws {
        let data = try writeTinyDataset(directory)
        var options = TrainOptions.tiny(data: data, out: directory.file("run").path)
        options.labels = try writeLabels(data)
        XCTAssertEqual(try TrainingRun(options: options).train(), .finished)
        let generator = try TrainedGenerator(run: options.out)
        let out = directory.file("set").path
        let rows = try Generation.writePerClass(generator, perClass: 3, options: GenerationOptions(count: 0), to: out,
                                                confidence: try ClassConfidence(run: options.out))
        XCTAssertEqual(rows.count, 9)
        XCTAssertEqual(rows.map(\.label), ["circle", "circle", "circle", "square", "square", "square", "stripe", "stripe", "stripe"])
        for row in rows {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + row.fileName), row.fileName)
            XCTAssertTrue(row.fileName.hasPrefix("images/\(row.label!)/"), row.fileName)
            XCTAssertTrue((0...1).contains(row.confidence!))
        }
        let metadata = try String(contentsOfFile: out + "/metadata.jsonl", encoding: .utf8)
        XCTAssertTrue(metadata.contains("\"label\":\"square\"") && metadata.contains("\"confidence\""))
        XCTAssertEqual(Generation.classFolder("T-shirt/top"), "T-shirt_top")

        var mixing = GenerationOptions(count: 0)
        mixing.augment = data
        mixing.labels = options.labels
        let mixed = try Generation.writePerClass(generator, perClass: 2, options: mixing, to: directory.file("mixed").path,
                                                 confidence: try ClassConfidence(run: options.out))
        let real = mixed.filter { $0.source == "real" }
        XCTAssertEqual(real.count, 32, "the labelled images only")
        XCTAssertEqual(mixed.count - real.count, 6)
        XCTAssertEqual(real.first?.label, "circle")
        XCTAssertEqual(real.first?.path, "pattern-0.png")
        XCTAssertTrue(real.allSatisfy { $0.fileName.hasPrefix("images/\($0.label!)/real-") })

        var utility = UtilityOptions()
        utility.perClass = 8
        utility.recipe.minimumSteps = 10
        utility.recipe.batch = 16
        let report = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertEqual(report.syntheticCount, 24)
        XCTAssertEqual(report.realCount + report.testCount, 32)
        for accuracy in [report.realOnly, report.realPlusSynthetic, report.syntheticOnly, report.discriminatorFeatures] {
            XCTAssertTrue((0...1).contains(accuracy))
        }
        XCTAssertEqual(report.perClass.map(\.label), ["circle", "square", "stripe"])
        XCTAssertEqual(report.perClass.reduce(0) { $0 + $1.testCount }, report.testCount)
        // Each class's share of the test images weighs its accuracy: together they are the overall one.
        for (overall, perClass) in [(report.realOnly, \UtilityReport.ClassAccuracy.realOnly), (report.realPlusSynthetic, \.realPlusSynthetic),
                                    (report.syntheticOnly, \.syntheticOnly)] {
            let weighted = report.perClass.reduce(0.0) { $0 + $1[keyPath: perClass] * Double($1.testCount) } / Double(report.testCount)
            XCTAssertEqual(weighted, overall, accuracy: 1e-9)
        }
        utility.filter = 0.5
        let filtered = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertEqual(filtered.syntheticCount, 24, "the surest half of 16 candidates per class")
        XCTAssertEqual(filtered.realOnly, report.realOnly, "the real-only classifier does not depend on the synthetic set")

        var plain = TrainOptions.tiny(data: data, out: directory.file("plain").path)
        plain.epochs = 1
        XCTAssertEqual(try TrainingRun(options: plain).train(), .finished)
        XCTAssertThrowsError(try ClassConfidence(run: plain.out)) { XCTAssertTrue("\($0)".contains("not class-conditional"), "\($0)") }
    }
}

/// index.csv's (row, path) pairs in row order.
enum DatasetIndexFile {
    static func rows(_ dataset: String) throws -> [(Int, String)] {
        let text = try String(contentsOfFile: dataset + "/index.csv", encoding: .utf8)
        return CSV.parse(text).dropFirst().compactMap { fields in Int(fields[0]).map { ($0, fields[2]) } }
    }
}
