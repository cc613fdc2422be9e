import Foundation
import Evaluation
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

    /// Rows count from the header (row 1); a repeated row is fine, a repeated image with another
    /// label is an error naming both rows; a row without a label leaves its image unlabelled.
    func testLabelFileRejectsAnImageGivenTwoLabels() throws {
        let path = directory.file("merged.csv").path
        try "path,label\na.png,cat\nb.png,\na.png,cat\nc.png,dog\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try LabelFile(path: path).labelOf, ["a.png": "cat", "c.png": "dog"])
        try "path,label\na.png,cat\nc.png,dog\na.png,dog\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LabelFile(path: path)) {
            XCTAssertEqual("\($0)", "\(path): a.png is labelled \"cat\" in row 2 and \"dog\" in row 4")
        }
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

    func testClassMixMovesTheRowTowardAPartnerTheLabellerConfuses() {
        let input = conditional.generatorInput(latents: [Float](repeating: 0, count: 16), classes: [2, 0],
                                               mixes: [ClassMix(partner: 1, weight: 0.25), nil])
        XCTAssertEqual(Array(input.values[8..<11]), [0, 0.25, 0.75])
        XCTAssertEqual(Array(input.values[19..<22]), [1, 0, 0])

        // Class 0's unmixed candidates: the labeller gives class 2 three times class 1's probability.
        let weights = ClassMixing.partnerWeights([[0.5, 0.1, 0.4], [0.9, 0.05, 0.05]], label: 0, classes: 3)
        XCTAssertEqual(weights[0], 0)
        XCTAssertEqual(weights[1], 0.25, accuracy: 1e-6)
        XCTAssertEqual(weights[2], 0.75, accuracy: 1e-6)
        XCTAssertEqual(ClassMixing.partnerWeights([[1, 0, 0]], label: 0, classes: 3), [0, 0.5, 0.5], "a sure labeller names every other class")

        let mixing = ClassMixing(fraction: 0.5)
        let mixes = mixing.mixes(label: 0, candidates: 4000, partnerWeights: weights, seed: 3)
        XCTAssertEqual(mixes.count, 4000)
        XCTAssertTrue(mixes.prefix(2000).allSatisfy { $0 == nil }, "the first candidates are the class's own")
        let drawn = mixes.suffix(2000).compactMap { $0 }
        XCTAssertEqual(drawn.count, 2000)
        XCTAssertTrue(drawn.allSatisfy { $0.partner != 0 && (0..<ClassMixing.maximumWeight).contains($0.weight) })
        XCTAssertEqual(Double(drawn.filter { $0.partner == 2 }.count) / 2000, 0.75, accuracy: 0.04)
        XCTAssertEqual(drawn.map(\.weight).reduce(0, +) / 2000, ClassMixing.maximumWeight / 2, accuracy: 0.02)
        XCTAssertEqual(mixing.mixes(label: 0, candidates: 4000, partnerWeights: weights, seed: 3), mixes, "drawn from the seed and class alone")
        XCTAssertNotEqual(mixing.mixes(label: 1, candidates: 4000, partnerWeights: weights, seed: 3), mixes)
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
            assertFiniteDifferences(parameter.value, analytic: parameter.gradient.values, at: indices, objective, parameter.name)
        }
    }

    /// Central differences of `objective` in `values` at `indices` (step 1e-2) against `analytic`.
    private func assertFiniteDifferences(_ values: Tensor, analytic: [Float], at indices: [Int], _ objective: () -> Double, _ name: String,
                                         file: StaticString = #filePath, line: UInt = #line) {
        for index in indices {
            let saved = values[index]
            values[index] = saved + 1e-2
            let plus = objective()
            values[index] = saved - 1e-2
            let minus = objective()
            values[index] = saved
            XCTAssertEqual(Double(analytic[index]), (plus - minus) / 2e-2, accuracy: 3e-2 * max(abs(Double(analytic[index])), 1e-2),
                           "\(name)[\(index)]", file: file, line: line)
        }
    }

    /// The projection discriminator's logit ψ(φ) + ⟨e_y, φ⟩: its gradients with respect to e_y,
    /// the trunk's weights and the images match finite differences (an unlabelled row scores
    /// without the projection), and with e = 0 it is the unconditional D.
    func testProjectionGradientMatchesFiniteDifferences() {
        var configuration = conditional
        configuration.projection = true
        let d = Discriminator(configuration, backend: .fast)
        let e = d.projection!
        XCTAssertEqual(e.value.shape, [3, 4 * 4 * 4 * 4])
        var random = SeededRandom(seed: 6)
        for parameter in d.parameters where parameter.value.shape.count == 4 {
            Initialization.normal(parameter.value, mean: 0, standardDeviation: 0.15, random: &random)
        }
        let x = Tensor(shape: [4, 1, 32, 32], values: (0..<4096).map { _ in random.nextUniform() * 2 - 1 })
        let labels = [0, 2, -1, 2]
        d.freezesRunningStatistics = true
        XCTAssertEqual(d.forward(x, classes: labels).plain().values, d.forward(x).plain().values, "e = 0: no class term")
        Initialization.normal(e.value, mean: 0, standardDeviation: 0.3, random: &random)
        let weights: [Float] = [1, -0.5, 2, 0.7]
        func objective() -> Double {
            zip(d.forward(x, classes: labels).plain().values, weights).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        XCTAssertNotEqual(d.forward(x, classes: labels).plain().values[0], d.forward(x).plain().values[0])
        XCTAssertEqual(d.forward(x, classes: labels).plain().values[2], d.forward(x).plain().values[2], "unlabelled: ψ(φ) alone")
        d.zeroGradients()
        d.needsInputGradient = true
        let logits = d.forward(x, classes: labels)
        let g = Tensor(shape: logits.shape, values: weights)
        let inputGradient = d.backward(g)!.plain().values
        d.freezesActivationPattern = true
        XCTAssertEqual(Array(e.gradient.values[256..<512]), [Float](repeating: 0, count: 256), "class 1 appears in no row")
        let trunk = d.parameters[0]
        assertFiniteDifferences(e.value, analytic: e.gradient.values, at: [0, 100, 2 * 256 + 7], objective, e.name)
        assertFiniteDifferences(trunk.value, analytic: trunk.gradient.values, at: [3, 40], objective, trunk.name)
        assertFiniteDifferences(x, analytic: inputGradient, at: [5, 1500, 3000], objective, "x")
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

    /// A projection discriminator's run (with R1, which scores the real images with their labels)
    /// resumes exactly; its class rows are checkpointed and move from zero.
    func testProjectionRunResumesExactly() throws {
        var labels = ""
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5) { options in
            if labels.isEmpty { labels = try! self.writeLabels(options.data) }
            options.labels = labels
            options.labelledBatch = 4
            options.projection = true
            options.step.r1 = 0.1
            options.step.r1Interval = 2
        }
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        let rows = try XCTUnwrap(a["discriminator.projection.weight"])
        XCTAssertEqual(rows.shape, [3, 32 * 4 * 4])
        XCTAssertEqual(rows, b["discriminator.projection.weight"])
        XCTAssertEqual(a["adam.discriminator.projection.weight.exp_avg"], b["adam.discriminator.projection.weight.exp_avg"])
        XCTAssertTrue(rows.floats.contains { $0 != 0 })
        let (configuration, _, _, _) = try Checkpoint.configuration(at: straight + "/checkpoints/latest.safetensors")
        XCTAssertTrue(configuration.projection)
        XCTAssertNotNil(try TrainedGenerator(run: straight), "a projection run's generator loads as any other")
        XCTAssertNotNil(try ClassConfidence(run: straight))
        XCTAssertNotNil(try FeatureExtractor(run: straight))
    }

    /// Class-conditional BatchNorm in G: it starts as the G without it (same draws, identity
    /// affines), its per-class rows sit beside each BN under PyTorch's indices, move from zero,
    /// are checkpointed with their Adam moments, and a run resumes exactly.
    func testClassNormStartsAsTheGeneratorWithoutItAndResumesExactly() throws {
        let plain = conditional
        var normed = conditional
        normed.classNorm = true
        let (withNorm, without) = (Generator(normed, backend: .fast), Generator(plain, backend: .fast))
        var (r1, r2) = (SeededRandom(seed: 3), SeededRandom(seed: 3))
        Initialization.dcgan(withNorm.layers, random: &r1)
        Initialization.dcgan(without.layers, random: &r2)
        XCTAssertEqual(Set(Checkpoint.tensors(of: withNorm.network, prefix: "").keys).subtracting(Checkpoint.tensors(of: without.network, prefix: "").keys),
                       ["main.1.class_weight", "main.1.class_bias", "main.4.class_weight", "main.4.class_bias",
                        "main.7.class_weight", "main.7.class_bias"])
        var random = SeededRandom(seed: 4)
        let latents = plain.latents(count: 6, random: &random)
        XCTAssertEqual(withNorm.forward(latents: latents).values, without.forward(latents: latents).values)

        var labels = ""
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5) { options in
            if labels.isEmpty { labels = try! self.writeLabels(options.data) }
            options.labels = labels
            options.labelledBatch = 4
            options.classNorm = true
        }
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        let rows = try XCTUnwrap(a["main.1.class_weight"])
        XCTAssertEqual(rows.shape, [3, 32])
        XCTAssertEqual(rows, b["main.1.class_weight"])
        XCTAssertEqual(a["adam.generator.main.4.class_bias.exp_avg"], b["adam.generator.main.4.class_bias.exp_avg"])
        XCTAssertTrue(rows.floats.contains { $0 != 0 })
        XCTAssertTrue(try Checkpoint.configuration(at: straight + "/checkpoints/latest.safetensors").0.classNorm)
        // Loaded for generation, each image follows its class through the affines too.
        let generator = try TrainedGenerator(run: straight)
        let z = generator.latent(seed: 0, index: 0)
        let byClass = (0..<3).map { generator.images(latents: z, classes: [$0]).values }
        XCTAssertNotEqual(byClass[0], byClass[1])
        let pair = generator.images(latents: z + z, classes: [2, 0]).values
        XCTAssertLessThan(zip(pair, byClass[2] + byClass[0]).map { abs($0 - $1) }.max()!, 1e-5, "image by image, whatever the batch")
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

    /// train --labeller: an unlabelled row takes each class as often as its probabilities say,
    /// never one of probability 0; a given label is kept; the draws depend only on the iteration.
    func testDrawnLabelsFollowTheProbabilitiesAndDependOnlyOnTheIteration() {
        let drawn = DrawnLabels(probabilities: [nil, [0.7, 0.3, 0], [0, 0, 1]], classCount: 3, seed: 5)
        var counts = [[Int]](repeating: [0, 0, 0], count: 3)
        for iteration in 0..<4000 {
            for (slot, k) in drawn.drawing([2, -1, -1], rows: [0, 1, 2], iteration: iteration).enumerated() { counts[slot][k] += 1 }
        }
        XCTAssertEqual(counts[0], [0, 0, 4000], "a given label is kept")
        XCTAssertEqual(Double(counts[1][0]) / 4000, 0.7, accuracy: 0.03)
        XCTAssertEqual(counts[1][2], 0)
        XCTAssertEqual(counts[2], [0, 0, 4000])
        let unlabelled = [Int](repeating: -1, count: 16), rows = [Int](repeating: 1, count: 16)
        XCTAssertEqual(drawn.drawing(unlabelled, rows: rows, iteration: 9), drawn.drawing(unlabelled, rows: rows, iteration: 9))
        XCTAssertNotEqual(drawn.drawing(unlabelled, rows: rows, iteration: 9), drawn.drawing(unlabelled, rows: rows, iteration: 10))
    }

    /// With a labeller, what the command line leaves unset is the set measured best; what it
    /// gives is kept; without a labeller, every image as drawn.
    func testClassSetChoiceDefaultsToTheMeasuredBestOnlyWithALabeller() {
        func resolve(filter: Double? = nil, byLabeller: Bool? = nil, keep: ClassFilterKeep? = nil, classMix: Double? = nil, psi: Float? = nil,
                     labeller: Bool) -> ClassSetChoice {
            ClassSetChoice.resolve(filter: filter, byLabeller: byLabeller, keep: keep, classMix: classMix, psi: psi, hasLabeller: labeller)
        }
        XCTAssertEqual(resolve(labeller: true), .measuredBest)
        XCTAssertEqual(resolve(labeller: true), ClassSetChoice.resolve(filter: 0.75, byLabeller: true, keep: .hardest, classMix: 0.25, psi: 1.5, hasLabeller: true))
        let none = resolve(labeller: false)
        XCTAssertNil(none.filter)
        XCTAssertEqual([none.byLabeller, none.keep == .surest, none.classMix == 0, none.psi == 1], [false, true, true, true])
        let unfiltered = resolve(filter: 0, labeller: true)
        XCTAssertEqual([unfiltered.filter, unfiltered.classMix], [0, 0.25])
        XCTAssertEqual(unfiltered.psi, 1, "the wider latents come only with the labeller's filter")
        XCTAssertEqual(resolve(psi: 1, labeller: true).psi, 1)
        XCTAssertEqual(resolve(psi: 0.8, labeller: false).psi, 0.8)
        XCTAssertEqual(resolve(classMix: 0, labeller: true).classMix, 0)
        XCTAssertEqual(resolve(keep: .surest, labeller: true).keep, .surest)
        let otherScorer = resolve(filter: 0.5, byLabeller: false, labeller: true)
        XCTAssertEqual([otherScorer.byLabeller, otherScorer.keep == .surest], [false, true], "another scorer keeps its own default")
        XCTAssertEqual(otherScorer.filter, 0.5)
        XCTAssertEqual(otherScorer.psi, 1)
        XCTAssertNil(resolve(byLabeller: false, labeller: true).filter, "no filter unless asked for, by another scorer")
        XCTAssertEqual(resolve(filter: 0.5, labeller: false).byLabeller, false)
    }

    /// A tiny class-conditional run on the tiny dataset, two thirds of it labelled: its dataset,
    /// options and generator.
    private func trainedConditionalRun() throws -> (data: String, options: TrainOptions, generator: TrainedGenerator) {
        let data = try writeTinyDataset(directory)
        var options = TrainOptions.tiny(data: data, out: directory.file("run").path)
        options.labels = try writeLabels(data)
        XCTAssertEqual(try TrainingRun(options: options).train(), .finished)
        return (data, options, try TrainedGenerator(run: options.out))
    }

    /// A labeller for the tiny dataset: the utility CNN trained on the labelled images, saved.
    private func writeLabeller(data: String, labels: String, classes: [String]) throws -> String {
        let (rowClasses, _) = try LabelFile(path: labels).datasetLabels(data, classes: conditional.classes)
        let labelled = try LabelledImages(dataset: data, rowClasses: rowClasses, perBatch: 0, seed: 0)
        var recipe = DownstreamClassifier.Recipe()
        (recipe.width, recipe.batch, recipe.minimumSteps) = (4, 16, 20)
        let cnn = DownstreamClassifier(imageSize: 32, channels: 1, classes: 3, recipe: recipe)
        cnn.train(images: labelled.images, labels: labelled.classes)
        let path = directory.file("labeller-\(classes.joined()).safetensors").path
        try Labeller(classifier: cnn, classes: classes).write(to: path)
        return path
    }

    /// train --labeller: a run whose unlabelled images take classes drawn from the labeller resumes
    /// exactly, differs from the run that leaves them unlabelled, records the labeller, and needs no
    /// labelled images beside its batches. A labeller that does not fit is refused before training.
    func testLabellerRunResumesExactlyAndIsCheckedFirst() throws {
        var labels = "", labeller = ""
        func configure(_ options: inout TrainOptions) {
            if labels.isEmpty {
                labels = try! writeLabels(options.data, labelled: 12)
                labeller = try! writeLabeller(data: options.data, labels: labels, classes: conditional.classes)
            }
            options.labels = labels
            options.labeller = labeller
            options.projection = true
        }
        let (straight, resumed) = try TinyRuns.straightAndResumed(in: directory, stopAfter: 5, configure)
        XCTAssertEqual(try TinyRuns.loggedFigures(resumed), try TinyRuns.loggedFigures(straight))
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(a["discriminator.projection.weight"], b["discriminator.projection.weight"])
        XCTAssertEqual(a["main.0.weight"], b["main.0.weight"])
        XCTAssertTrue(try String(contentsOfFile: straight + "/config.json", encoding: .utf8).contains("\"labeller\" : \"\(labeller)\""))
        XCTAssertEqual(TrainedGenerator.labeller(run: straight), straight + "/labeller.safetensors", "the run keeps its own copy")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: straight + "/labeller.safetensors")), try Data(contentsOf: URL(fileURLWithPath: labeller)))
        try FileManager.default.removeItem(atPath: straight + "/labeller.safetensors")
        XCTAssertEqual(TrainedGenerator.labeller(run: straight), labeller, "a run without the copy: the path it recorded")

        var options = TrainOptions.tiny(data: try writeTinyDataset(directory), out: directory.file("without").path)
        configure(&options)
        XCTAssertNil(try TrainingRun(options: options).labelledImages, "every image has a class: none ride beside the batch")
        options.labeller = nil
        options.labelledBatch = 0
        XCTAssertEqual(try TrainingRun(options: options).train(), .finished)
        let without = try Safetensors.read(path: options.out + "/checkpoints/latest.safetensors").tensors
        XCTAssertNotEqual(without["discriminator.projection.weight"], a["discriminator.projection.weight"])
        XCTAssertNil(TrainedGenerator.labeller(run: options.out))

        var refused = TrainOptions.tiny(data: options.data, out: directory.file("refused").path)
        refused.labeller = labeller
        XCTAssertThrowsError(try TrainingRun(options: refused)) { XCTAssertTrue("\($0)".contains("--labeller comes with --labels"), "\($0)") }
        refused.labels = labels
        refused.step.pseudoLabels = 0.9
        XCTAssertThrowsError(try TrainingRun(options: refused)) { XCTAssertTrue("\($0)".contains("--pseudo-labels"), "\($0)") }
        refused.step.pseudoLabels = 0
        refused.labels = try writeLabels(options.data, labelled: 48)
        XCTAssertThrowsError(try TrainingRun(options: refused)) { XCTAssertTrue("\($0)".contains("labels every image"), "\($0)") }
        refused.labels = try writeLabels(options.data, labelled: 12)
        refused.labeller = try writeLabeller(data: options.data, labels: labels, classes: ["circle", "square", "star"])
        XCTAssertThrowsError(try TrainingRun(options: refused)) { XCTAssertTrue("\($0)".contains(refused.labeller!), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: refused.out + "/metrics.jsonl"), "refused before training")
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

    /// G's classification term is weighted on its own: D's step is the same whatever its weight,
    /// and G's loss is the adversarial loss plus weight × the fakes' class loss (0: none, and G
    /// moves differently). The weight is kept in the run's options.
    func testGeneratorClassWeightScalesOnlyGsClassificationTerm() throws {
        var random = SeededRandom(seed: 9)
        let real = Tensor(shape: [6, 1, 32, 32], values: (0..<6144).map { _ in random.nextUniform() * 2 - 1 })
        let classes = [0, 1, 2, -1, -1, 0]
        func step(generatorClassWeight: Float?) -> (metrics: StepMetrics, generator: [Float]) {
            var options = StepOptions()
            options.generatorClassWeight = generatorClassWeight
            let trainer = DCGANTrainer(configuration: conditional, options: options, seed: 3)
            let metrics = trainer.step(real: real, classes: classes)
            return (metrics, trainer.generator.parameters[0].value.values)
        }
        let acgan = step(generatorClassWeight: nil), none = step(generatorClassWeight: 0), double = step(generatorClassWeight: 2)
        XCTAssertEqual(none.metrics.lossD, acgan.metrics.lossD)
        XCTAssertEqual(none.metrics.dFakeAfter, acgan.metrics.dFakeAfter, "G's loss is taken against the same D")
        let classTerm = acgan.metrics.lossG - none.metrics.lossG
        XCTAssertGreaterThan(classTerm, 0.1, "the fakes' class loss, about ln 3 for an untrained head")
        XCTAssertEqual(double.metrics.lossG - none.metrics.lossG, 2 * classTerm, accuracy: 1e-4 * Float(max(1, acgan.metrics.lossG)))
        XCTAssertTrue(none.generator != acgan.generator, "without the term G's gradient differs")

        var options = StepOptions()
        options.generatorClassWeight = 0
        let decoded = try JSONDecoder().decode(StepOptions.self, from: try JSONEncoder().encode(options))
        XCTAssertEqual(decoded.generatorClassWeight, 0)
        let older = try JSONDecoder().decode(StepOptions.self, from: try JSONEncoder().encode(StepOptions()))
        XCTAssertNil(older.generatorClassWeight, "a run from before the option: AC-GAN's weight")
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
    func testFilterKeepsTheSurestOrTheHardestOfTheClass() {
        let scores: [Float] = [0.9, 0.2, 0.55, 0.99, 0.45, 0.7, 0.5]
        XCTAssertEqual(ClassFilterKeep.surest.choose(scores, count: 3), [0, 3, 5])
        // Called their class (≥ 0.5): 0.5, 0.55, 0.7, 0.9, 0.99, least sure first.
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 3), [2, 5, 6])
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 5), [0, 2, 3, 5, 6])
        // Too few called their class: the rest, surest first (0.45 before 0.2).
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 6), [0, 2, 3, 4, 5, 6])
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 7), Array(0..<7))
        // A floor of 0.6: of 0.7, 0.9 and 0.99 the least sure first, then 0.55 (surest of the rest).
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 2, floor: 0.6), [0, 5])
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 4, floor: 0.6), [0, 2, 3, 5])
        XCTAssertEqual(ClassFilterKeep.hardest.choose(scores, count: 2, floor: 0), [1, 4], "no floor: the least sure of all")
        XCTAssertEqual(ClassFilterKeep.surest.choose(scores, count: 3, floor: 0.95), [0, 3, 5], "the surest have no floor")
    }

    func testPerClassExportAndUtilityReport() throws {
        let (data, options, generator) = try trainedConditionalRun()
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
        // --psi: each class's latents scaled, the same candidates otherwise.
        var narrow = GenerationOptions(count: 0)
        narrow.psi = 0.5
        let narrowRows = try Generation.writePerClass(generator, perClass: 3, options: narrow, to: directory.file("narrow").path,
                                                      confidence: try ClassConfidence(run: options.out))
        XCTAssertEqual(narrowRows.map(\.index), rows.map(\.index))
        XCTAssertTrue(narrowRows.allSatisfy { $0.psi == 0.5 } && rows.allSatisfy { $0.psi == nil })
        let nz = generator.configuration.nz
        XCTAssertEqual(try Generation.readLatents(directory.file("narrow/latents.npy").path, nz: nz),
                       try Generation.readLatents(out + "/latents.npy", nz: nz).map { $0 * 0.5 })

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
        // --ratio R with --per-class N: at most N/R real images of a class, the first in the dataset's order.
        mixing.realPerClass = 3
        let capped = try Generation.writePerClass(generator, perClass: 2, options: mixing, to: directory.file("capped").path,
                                                  confidence: try ClassConfidence(run: options.out)).filter { $0.source == "real" }
        for label in ["circle", "square", "stripe"] {
            XCTAssertEqual(capped.filter { $0.label == label }.map(\.index), Array(real.filter { $0.label == label }.map(\.index).prefix(3)), label)
        }
        XCTAssertEqual(capped.count, 9)

        var utility = UtilityOptions()
        utility.perClass = 8
        utility.recipe.minimumSteps = 10
        utility.recipe.batch = 16
        utility.recipe.width = 8
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
        XCTAssertNil(report.psi)
        var wide = utility
        wide.psi = 1.5
        let wideReport = try Utility.run(model: options.out, labels: options.labels!, options: wide)
        XCTAssertEqual(wideReport.psi, 1.5)
        XCTAssertEqual(wideReport.realOnly, report.realOnly, "the real images' classifier does not see the set")
        // Two seeds per classifier: the first is the single run, each figure is their mean.
        utility.repeats = 2
        let twice = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        let runs = try XCTUnwrap(twice.runs)
        for (mean, seeds, single) in [(twice.realOnly, runs.realOnly, report.realOnly), (twice.realPlusSynthetic, runs.realPlusSynthetic, report.realPlusSynthetic),
                                      (twice.syntheticOnly, runs.syntheticOnly, report.syntheticOnly)] {
            XCTAssertEqual(seeds.count, 2)
            XCTAssertEqual(seeds[0], single, "seed 1 of 2 is the one-seed report's")
            XCTAssertEqual(mean, (seeds[0] + seeds[1]) / 2, accuracy: 1e-12)
        }
        let weighted = twice.perClass.reduce(0.0) { $0 + $1.realOnly * Double($1.testCount) } / Double(twice.testCount)
        XCTAssertEqual(weighted, twice.realOnly, accuracy: 1e-9)
        // The confusion counts hold every test image once per seed, by its true class; their diagonal is
        // each class's accuracy.
        for (matrix, perClass) in [(twice.confusion.realOnly, \UtilityReport.ClassAccuracy.realOnly), (twice.confusion.realPlusSynthetic, \.realPlusSynthetic),
                                   (twice.confusion.syntheticOnly, \.syntheticOnly)] {
            XCTAssertEqual(matrix.map { $0.reduce(0, +) }, twice.perClass.map { 2 * $0.testCount })
            for (label, row) in matrix.enumerated() {
                XCTAssertEqual(Double(row[label]) / Double(2 * twice.perClass[label].testCount), twice.perClass[label][keyPath: perClass], accuracy: 1e-9)
            }
        }
        XCTAssertNil(twice.confusion.labeller)
        XCTAssertEqual(twice.repeats, 2)
        XCTAssertNil(report.runs)
        XCTAssertEqual(report.schedule, .constant)
        utility.repeats = 1
        utility.filter = 0.5
        let filtered = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertEqual(filtered.syntheticCount, 24, "the surest half of 16 candidates per class")
        XCTAssertEqual(filtered.realOnly, report.realOnly, "the real-only classifier does not depend on the synthetic set")
        XCTAssertEqual(filtered.filterBy, .head)
        XCTAssertEqual(filtered.filterKeep, .surest)
        XCTAssertNil(report.filterBy)
        XCTAssertNil(report.filterKeep)
        XCTAssertNil(report.labellerAgreement)
        XCTAssertTrue(rows.allSatisfy { $0.labellerProbabilities == nil }, "no labeller, no soft labels")
        XCTAssertFalse(metadata.contains("labeller_probabilities"))

        // A labeller: the utility CNN on the labelled images, its classes in another order than the
        // model's (matched by name), saved and read back.
        let (rowClasses, _) = try LabelFile(path: options.labels!).datasetLabels(data, classes: conditional.classes)
        let labelled = try LabelledImages(dataset: data, rowClasses: rowClasses, perBatch: 0, seed: 0)
        var recipe = DownstreamClassifier.Recipe()
        (recipe.width, recipe.batch, recipe.minimumSteps) = (4, 16, 20)
        let cnn = DownstreamClassifier(imageSize: 32, channels: 1, classes: 3, recipe: recipe)
        let order = [1, 2, 0]
        cnn.train(images: labelled.images, labels: labelled.classes.map { order[$0] })
        let labellerPath = directory.file("labeller.safetensors").path
        try Labeller(classifier: cnn, classes: ["stripe", "circle", "square"]).write(to: labellerPath)
        let scorer = try Labeller(path: labellerPath).scorer(for: generator.configuration)
        XCTAssertEqual(scorer.mapping, order)
        let probe = generator.images(latents: generator.latent(seed: 0, index: 0), classes: [0])
        let raw = cnn.probabilities(probe.values)[0], mapped = scorer.probabilities(probe)[0]
        for k in 0..<3 { XCTAssertEqual(mapped[k], raw[order[k]], accuracy: 1e-6, "the model's class \(k) is the labeller's \(order[k])") }
        XCTAssertEqual(scorer.predictions(probe), [mapped.firstIndex(of: mapped.max()!)!])

        // Each class keeps 3 of its 6 candidates by the labeller's probability of that class: the
        // highest three, or (hardest) the lowest of those it scores at least the floor.
        // The third floor is class 0's second-lowest score: its kept three are then its 2nd-4th lowest.
        let firstClass = [Int](repeating: 0, count: 6)
        let firstScores = scorer.scores(generator.images(latents: (0..<6).flatMap { generator.latent(seed: 0, index: $0) }, classes: firstClass),
                                        classes: firstClass).sorted()
        for (keep, floor) in [(ClassFilterKeep.surest, 0.5), (.hardest, 0.5), (.hardest, Double(firstScores[1]))] {
            var byLabeller = GenerationOptions(count: 0)
            byLabeller.filter = 0.5
            byLabeller.filterKeep = keep
            byLabeller.filterFloor = floor
            let chosen = try Generation.writePerClass(generator, perClass: 3, options: byLabeller, to: directory.file("by-labeller-\(keep)-\(floor)").path,
                                                      confidence: try ClassConfidence(run: options.out), scorer: scorer, labeller: scorer)
            for (label, name) in generator.configuration.classes.enumerated() {
                let candidates = (0..<6).map { label * 6 + $0 }
                let images = generator.images(latents: candidates.flatMap { generator.latent(seed: 0, index: $0) }, classes: candidates.map { _ in label })
                let scores = scorer.scores(images, classes: candidates.map { _ in label })
                let ranked = keep == .surest ? scores.indices.sorted { scores[$0] > scores[$1] }
                    : scores.indices.filter { scores[$0] >= Float(floor) }.sorted { scores[$0] < scores[$1] }
                        + scores.indices.filter { scores[$0] < Float(floor) }.sorted { scores[$0] > scores[$1] }
                let rows = chosen.filter { $0.label == name }
                XCTAssertEqual(rows.count, 3)
                XCTAssertEqual(Set(rows.map(\.index)), Set(ranked.prefix(3).map { candidates[$0] }), "\(name), \(keep), \(floor)")
                for row in rows {
                    XCTAssertEqual(row.score!, scores[row.index - label * 6], accuracy: 1e-5)
                    let soft = try XCTUnwrap(row.labellerProbabilities)
                    XCTAssertEqual(soft.reduce(0, +), 1, accuracy: 1e-5)
                    XCTAssertEqual(soft[label], row.score!, accuracy: 1e-5, "the soft label of the class it was kept for")
                }
            }
        }

        // Class mixing: the last half of each class's 6 candidates drawn toward a partner; each row
        // says which and how far, and its soft label is the labeller's reading of that image.
        var classMixing = GenerationOptions(count: 0)
        (classMixing.filter, classMixing.filterKeep, classMixing.classMix) = (0.5, ClassFilterKeep.hardest, 0.5)
        XCTAssertThrowsError(try Generation.writePerClass(generator, perClass: 3, options: classMixing, to: directory.file("mixed-alone").path,
                                                          confidence: try ClassConfidence(run: options.out), scorer: scorer))
        let drawnBetween = try Generation.writePerClass(generator, perClass: 3, options: classMixing, to: directory.file("between").path,
                                                 confidence: try ClassConfidence(run: options.out), scorer: scorer, labeller: scorer)
        XCTAssertEqual(drawnBetween.count, 9)
        for row in drawnBetween {
            let label = try XCTUnwrap(generator.configuration.classes.firstIndex(of: row.label!)), candidate = row.index - label * 6
            XCTAssertEqual(row.mixedWith != nil, candidate >= 3, "candidate \(candidate)")
            var mix: [ClassMix?] = [nil]
            if let partner = row.mixedWith {
                XCTAssertNotEqual(partner, row.label)
                let weight = try XCTUnwrap(row.mixWeight)
                XCTAssertTrue((0..<ClassMixing.maximumWeight).contains(weight))
                mix = [ClassMix(partner: generator.configuration.classes.firstIndex(of: partner)!, weight: weight)]
            }
            let image = generator.images(latents: generator.latent(seed: 0, index: row.index), classes: [label], mixes: mix)
            let soft = scorer.probabilities(image)[0]
            for k in 0..<3 { XCTAssertEqual(row.labellerProbabilities![k], soft[k], accuracy: 1e-5) }
        }
        let metadataText = try String(contentsOfFile: directory.file("between/metadata.jsonl").path, encoding: .utf8)
        XCTAssertTrue(metadataText.contains("\"mixed_with\"") && metadataText.contains("\"mix_weight\""))

        utility.filter = 0
        utility.classMix = 0.5
        XCTAssertThrowsError(try Utility.run(model: options.out, labels: options.labels!, options: utility), "class mixing needs a labeller")
        utility.labeller = labellerPath
        let mixedUtility = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertEqual(mixedUtility.classMix, 0.5)
        XCTAssertEqual(mixedUtility.classMixed, 12, "without a filter every mixed candidate is kept: half of each class's 8")
        XCTAssertEqual(mixedUtility.realOnly, report.realOnly)
        utility.classMix = 0
        let measured = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        let agreement = try XCTUnwrap(measured.labellerAgreement)
        let labellerCalls = try XCTUnwrap(measured.confusion.labeller)
        XCTAssertEqual(labellerCalls.map { $0.reduce(0, +) }, measured.perClass.map(\.testCount))
        XCTAssertEqual(Double(labellerCalls.indices.map { labellerCalls[$0][$0] }.reduce(0, +)) / Double(measured.testCount),
                       try XCTUnwrap(measured.labellerTestAccuracy), accuracy: 1e-9)
        XCTAssertTrue((0...1).contains(agreement))
        XCTAssertNil(measured.relabelled)
        XCTAssertEqual(measured.syntheticOnly, report.syntheticOnly, "measuring with a labeller changes nothing")
        utility.relabel = true
        let relabelled = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertEqual(relabelled.relabelled, Int(((1 - agreement) * 24).rounded()), "the images the labeller calls another class")
        XCTAssertEqual(relabelled.syntheticCount, 24)
        utility.relabel = false
        utility.softLabels = true
        let soft = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertTrue(soft.softLabels)
        XCTAssertFalse(measured.softLabels)
        XCTAssertEqual(soft.realOnly, report.realOnly)
        utility.softLabels = false

        // An ensemble: a second labeller, its classes in a third order, averaged with the first.
        recipe.seed = 7
        let other = DownstreamClassifier(imageSize: 32, channels: 1, classes: 3, recipe: recipe)
        let otherOrder = [2, 0, 1]
        other.train(images: labelled.images, labels: labelled.classes.map { otherOrder[$0] })
        let otherPath = directory.file("labeller-2.safetensors").path
        try Labeller(classifier: other, classes: ["square", "stripe", "circle"]).write(to: otherPath)
        let ensemble = try LabellerScorer(labellers: [Labeller(path: labellerPath), Labeller(path: otherPath)], for: generator.configuration)
        XCTAssertEqual(ensemble.name, "ensemble of 2 labellers")
        // The generator reuses its output tensor: a fresh image, not `probe`.
        let image = generator.images(latents: generator.latent(seed: 0, index: 1), classes: [1])
        let mean = ensemble.probabilities(image)[0], firstRaw = cnn.probabilities(image.values)[0], otherRaw = other.probabilities(image.values)[0]
        for k in 0..<3 { XCTAssertEqual(mean[k], (firstRaw[order[k]] + otherRaw[otherOrder[k]]) / 2, accuracy: 1e-6, "class \(k): the two labellers' mean") }
        XCTAssertEqual(ensemble.predictions(image), [mean.firstIndex(of: mean.max()!)!])
        // Tested on the labelled images themselves, the report gives the ensemble's own accuracy.
        utility.labellers = [labellerPath, otherPath]
        utility.testLabels = options.labels
        let byEnsemble = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        let predicted = ensemble.predictions(Tensor(shape: [labelled.count, 1, 32, 32], values: labelled.images))
        let right = zip(predicted, labelled.classes).filter { $0 == $1 }.count
        XCTAssertEqual(try XCTUnwrap(byEnsemble.labellerTestAccuracy), Double(right) / Double(labelled.count), accuracy: 1e-9)
        XCTAssertEqual(byEnsemble.labellers, [labellerPath, otherPath])
        XCTAssertNil(report.labellerTestAccuracy)
        XCTAssertThrowsError(try LabellerScorer(labellers: [Labeller(path: labellerPath), Labeller(classifier: other, classes: ["square", "star", "circle"], path: "star.safetensors")],
                                                for: generator.configuration)) {
            XCTAssertTrue("\($0)".contains("star.safetensors") && "\($0)".contains("the same classes"), "\($0)")
        }
        utility.testLabels = nil
        utility.labeller = nil
        utility.filter = 0.5
        utility.filterBy = .labeller
        XCTAssertThrowsError(try Utility.run(model: options.out, labels: options.labels!, options: utility)) {
            XCTAssertTrue("\($0)".contains("need a labeller"), "\($0)")
        }
        let twoClasses = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        XCTAssertThrowsError(try Labeller(classifier: twoClasses, classes: ["circle", "square"], path: "two.safetensors").scorer(for: generator.configuration)) {
            XCTAssertTrue("\($0)".contains("two.safetensors") && "\($0)".contains("stripe"), "\($0)")
        }

        var plain = TrainOptions.tiny(data: data, out: directory.file("plain").path)
        plain.epochs = 1
        XCTAssertEqual(try TrainingRun(options: plain).train(), .finished)
        XCTAssertThrowsError(try ClassConfidence(run: plain.out)) { XCTAssertTrue("\($0)".contains("not class-conditional"), "\($0)") }
    }
}

extension ConditionalTests {
    /// utility --set: folders generate --per-class wrote are read back as an ImageFolder reader
    /// would (8-bit pixels, each row's class; `--augment`'s real rows skipped), joined, and judged;
    /// a row that cannot be used stops the read, naming its file.
    func testUtilityReadsExportedSets() throws {
        let (data, options, generator) = try trainedConditionalRun()
        let classes = generator.configuration.classes, sample = 32 * 32
        let labellerPath = try writeLabeller(data: data, labels: options.labels!, classes: classes)
        let scorer = try Labeller(path: labellerPath).scorer(for: generator.configuration)

        var export = GenerationOptions(count: 0)
        (export.augment, export.labels) = (data, options.labels)
        let first = directory.file("first").path, second = directory.file("second").path, bare = directory.file("bare").path
        let rows = try Generation.writePerClass(generator, perClass: 4, options: export, to: first, confidence: try ClassConfidence(run: options.out),
                                                labeller: scorer)
        (export.augment, export.seed) = (nil, 1)
        try Generation.writePerClass(generator, perClass: 2, options: export, to: second, confidence: try ClassConfidence(run: options.out), labeller: scorer)
        try Generation.writePerClass(generator, perClass: 2, options: export, to: bare, confidence: try ClassConfidence(run: options.out))

        let read = try ExportedClassSet.read([first], classes: classes, size: 32, channels: 1)
        let synthetic = rows.filter { $0.source == "synthetic" }
        XCTAssertEqual(read.count, 12)
        XCTAssertEqual(read.realRows, 32)
        XCTAssertEqual(read.classes, synthetic.map { classes.firstIndex(of: $0.label!)! })
        for (k, row) in synthetic.enumerated() {
            let image = generator.images(latents: generator.latent(seed: 0, index: row.index), classes: [read.classes[k]]).values
            let stored = read.images[k * sample..<(k + 1) * sample]
            // Drawn alone here and in a batch there: the 8-bit level may differ by one where rounding does.
            XCTAssertEqual(zip(stored, image).map { abs($0 - $1) }.max()!, 0, accuracy: 1.5 / 127.5, "row \(k): the generator's image as 8-bit pixels")
            XCTAssertTrue(stored.allSatisfy { (($0 + 1) * 127.5 - (($0 + 1) * 127.5).rounded()).magnitude < 1e-3 }, "8-bit levels")
            XCTAssertEqual(read.probabilities[k], row.labellerProbabilities)
        }

        var utility = UtilityOptions()
        (utility.recipe.minimumSteps, utility.recipe.batch, utility.recipe.width) = (10, 16, 8)
        utility.sets = [first, second]
        let joined = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        XCTAssertEqual(joined.syntheticCount, 18)
        XCTAssertEqual(joined.sets, [first, second])
        XCTAssertEqual(joined.filter, 0)
        XCTAssertNil(joined.filterBy)
        XCTAssertNil(joined.classMix)
        XCTAssertNil(joined.labellerAgreement)
        // The rows carry their soft labels: no labeller is needed for them.
        utility.softLabels = true
        XCTAssertTrue(try Utility.run(model: options.out, labels: options.labels!, options: utility).softLabels)
        utility.sets = [first, bare]
        XCTAssertThrowsError(try Utility.run(model: options.out, labels: options.labels!, options: utility)) {
            XCTAssertTrue("\($0)".contains(bare) && "\($0)".contains("labeller_probabilities"), "\($0)")
        }
        // Relabelled, each image takes the labeller's class for what was read.
        (utility.softLabels, utility.relabel, utility.labeller, utility.sets) = (false, true, labellerPath, [first, second])
        let relabelled = try Utility.run(model: options.out, labels: options.labels!, options: utility)
        let both = try ExportedClassSet.read([first, second], classes: classes, size: 32, channels: 1)
        let calls = scorer.predictions(Tensor(shape: [both.count, 1, 32, 32], values: both.images))
        let moved = zip(calls, both.classes).filter { $0 != $1 }.count
        XCTAssertEqual(relabelled.relabelled, moved)
        XCTAssertEqual(try XCTUnwrap(relabelled.labellerAgreement), Double(both.count - moved) / Double(both.count), accuracy: 1e-12)

        func folder(_ name: String, row: String, image: PixelImage? = nil) throws -> String {
            if let image { _ = try directory.write("\(name)/images/circle/0.png", try PNG.encode(image)) }
            return try directory.write("\(name)/metadata.jsonl", Array(row.utf8)).deletingLastPathComponent().path
        }
        let pattern = Pictures.pattern(width: 32, height: 32, channels: 1, seed: 0)
        let cases: [(folder: String, says: [String])] = [
            (try folder("star", row: #"{"file_name":"images/circle/0.png","source":"synthetic","index":0,"label":"star"}"#, image: pattern), ["line 1", "star"]),
            (try folder("small", row: #"{"file_name":"images/circle/0.png","source":"synthetic","index":0,"label":"circle"}"#,
                        image: Pictures.pattern(width: 16, height: 16, channels: 1, seed: 0)), ["circle/0.png", "16×16"]),
            (try folder("missing", row: #"{"file_name":"images/circle/1.png","source":"synthetic","index":0,"label":"circle"}"#), ["circle/1.png", "cannot read"]),
            (try folder("outside", row: #"{"file_name":"../first/images/circle/000000.png","source":"synthetic","index":0,"label":"circle"}"#), ["outside the folder"]),
            (try folder("garbled", row: "{\"file_name\": 3}\n"), ["line 1", "not a metadata row"]),
            (try folder("real-only", row: #"{"file_name":"images/circle/0.png","source":"real","index":0,"label":"circle"}"#, image: pattern), ["no synthetic images"]),
            (directory.file("nowhere").path, ["nowhere/metadata.jsonl"]),
        ]
        for (path, says) in cases {
            XCTAssertThrowsError(try ExportedClassSet.read([path], classes: classes, size: 32, channels: 1), path) { error in
                for words in says { XCTAssertTrue("\(error)".contains(words), "\(error) should say \(words)") }
            }
        }
    }
}

/// `darkroom label`: FixMatch's labels for a dataset's unlabelled images, as a labels CSV.
final class PseudoLabellingTests: XCTestCase {
    /// The tiny dataset with its first 20 images labelled even or odd by row, and a labeller small
    /// enough to train in a moment.
    func tinyLabelled(_ directory: TemporaryDirectory) throws -> (data: String, index: [(Int, String)], labels: String, text: String, options: PseudoLabelOptions) {
        let data = try writeTinyDataset(directory)
        let index = try DatasetIndexFile.rows(data)
        var text = "path,label\n"
        for (row, path) in index.prefix(20) { text += "\(path),\(row % 2 == 0 ? "even" : "odd")\n" }
        let labels = try directory.write("labels.csv", Array(text.utf8)).path
        var options = PseudoLabelOptions()
        options.fixMatch.steps = 5
        options.recipe.batch = 8
        options.recipe.width = 4
        options.recipe.minimumSteps = 5
        return (data, index, labels, text, options)
    }

    func testWritesGivenLabelsAsTheyAreAndPredictionsForTheRest() throws {
        let directory = try TemporaryDirectory("pseudo-labels")
        defer { directory.remove() }
        var (data, index, labels, _, options) = try tinyLabelled(directory)
        options.validationFraction = 0.2
        options.saveLabeller = directory.file("labeller.safetensors").path
        let out = directory.file("pseudo.csv").path
        let report = try PseudoLabelling.run(data: data, labels: labels, out: out, options: options)
        XCTAssertEqual(report.labeller, options.saveLabeller)
        XCTAssertEqual(report.classes, ["even", "odd"])
        XCTAssertEqual([report.labelled, report.trainedOn, report.unlabelled, report.pseudoLabelled, report.validationCount],
                       [20, 16, index.count - 20, index.count - 20, 4])
        XCTAssertNotNil(report.validationAccuracy)
        XCTAssertEqual(report.perClass.values.reduce(0, +), report.pseudoLabelled)
        XCTAssertNil(report.testAccuracy)
        // 16 labels trained on, even and odd alike in the tiny dataset's rows; the estimate is a share per class.
        XCTAssertEqual(report.labelShares.keys.sorted(), ["even", "odd"])
        XCTAssertEqual(report.labelShares.values.reduce(0, +), 1, accuracy: 1e-9)
        XCTAssertEqual(report.labelShares.values.map { $0 * 16 }.allSatisfy { $0 == $0.rounded() }, true)
        XCTAssertEqual(report.estimatedShares.keys.sorted(), ["even", "odd"])
        XCTAssertEqual(report.estimatedShares.values.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(report.alignment, .none)
        // Measured on the validation labels alone, warned of where they find the labeller worse.
        XCTAssertEqual(report.warning?.contains("on the 4 held-out labelled images"),
                       report.validationAccuracy! < report.supervisedValidationAccuracy! ? true : nil)
        let written = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertFalse(written.contains("\n\n"), "no blank rows")
        let rows = CSV.parse(written).filter { $0.count == 4 }
        XCTAssertEqual(rows.count, index.count + 1)
        XCTAssertEqual(rows.first, ["path", "label", "confidence", "source"])
        let given = rows.filter { $0[3] == "label" }, predicted = rows.filter { $0[3] == "pseudo" }
        XCTAssertEqual(given.map { [$0[0], $0[1]] }, index.prefix(20).map { [$0.1, $0.0 % 2 == 0 ? "even" : "odd"] }, "the given labels, validation ones too")
        XCTAssertEqual(Set(predicted.map { $0[0] }), Set(index.dropFirst(20).map(\.1)))
        XCTAssertTrue(predicted.allSatisfy { ["even", "odd"].contains($0[1]) && (0.5...1).contains(Double($0[2])!) })
        // The saved labeller is the one that wrote the CSV: the same confidences from the file.
        let saved = try Labeller(path: options.saveLabeller!)
        XCTAssertEqual(saved.classes, ["even", "odd"])
        let unlabelled = index.dropFirst(20).map { $0.0 }
        let images = try LabelledImages(dataset: data, rowClasses: index.map { unlabelled.contains($0.0) ? 0 : -1 }, perBatch: 0, seed: 0).images
        for (p, row) in zip(saved.classifier.probabilities(images), predicted) {
            XCTAssertEqual(Double(p.max()!), Double(row[2])!, accuracy: 1e-4, row[0])
            XCTAssertEqual(saved.classes[p.firstIndex(of: p.max()!)!], row[1], row[0])
        }
        // train --labels reads it: every image labelled.
        let (rowClasses, classes) = try LabelFile(path: out).datasetLabels(data)
        XCTAssertEqual(classes, ["even", "odd"])
        XCTAssertFalse(rowClasses.contains(-1))

        // No validation: every label trains, and the labeller is measured on the test labels only.
        var every = options
        every.validationFraction = 0
        every.testLabels = labels
        every.saveLabeller = nil
        let all = try PseudoLabelling.run(data: data, labels: labels, out: out, options: every)
        XCTAssertEqual([all.trainedOn, all.validationCount, all.testCount], [20, 0, 20])
        XCTAssertNil(all.validationAccuracy)
        XCTAssertNil(all.supervisedValidationAccuracy)
        XCTAssertNotNil(all.testAccuracy)
        XCTAssertEqual(all.warning?.contains("on the 20 test images"), all.testAccuracy! < all.supervisedTestAccuracy! ? true : nil)
        // With no split to move, the seed still moves the labeller.
        let first = try String(contentsOfFile: out, encoding: .utf8)
        _ = try PseudoLabelling.run(data: data, labels: labels, out: out, options: every)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), first, "the same seed, the same labels")
        every.seed = 1
        _ = try PseudoLabelling.run(data: data, labels: labels, out: out, options: every)
        XCTAssertNotEqual(try String(contentsOfFile: out, encoding: .utf8), first)
        // Aligned to the estimated shares, FixMatch's targets and so its labeller change. At a bar of
        // 0.5 every target of two classes counts, so the aligned boundary between them shows.
        every.seed = 0
        every.fixMatch.threshold = 0.5
        _ = try PseudoLabelling.run(data: data, labels: labels, out: out, options: every)
        let unaligned = try String(contentsOfFile: out, encoding: .utf8)
        every.alignment = .estimated
        let aligned = try PseudoLabelling.run(data: data, labels: labels, out: out, options: every)
        XCTAssertEqual(aligned.alignment, .estimated)
        XCTAssertEqual(aligned.estimatedShares, all.estimatedShares, "estimated before FixMatch, from the labels-only CNN")
        XCTAssertNotEqual(try String(contentsOfFile: out, encoding: .utf8), unaligned)

        options.keep = 0.999_999
        let sure = try PseudoLabelling.run(data: data, labels: labels, out: out, options: options)
        let kept = CSV.parse(try String(contentsOfFile: out, encoding: .utf8)).filter { $0.count == 4 && $0[3] == "pseudo" }
        XCTAssertEqual(kept.count, sure.pseudoLabelled)
        XCTAssertTrue(kept.allSatisfy { Double($0[2])! >= 0.9999 })
        XCTAssertThrowsError(try PseudoLabelling.run(data: data, labels: directory.file("missing.csv").path, out: out, options: options)) {
            XCTAssertTrue("\($0)".contains("missing.csv"), "\($0)")
        }
        let everyImage = try directory.write("every.csv", Array(("path,label\n" + index.map { "\($0.1),\($0.0 % 2 == 0 ? "even" : "odd")\n" }.joined()).utf8)).path
        XCTAssertThrowsError(try PseudoLabelling.run(data: data, labels: everyImage, out: out, options: options)) {
            XCTAssertTrue("\($0)".contains("every.csv: labels every image"), "\($0)")
        }
        XCTAssertThrowsError(try PseudoLabelling.run(data: data, labels: labels, out: directory.file("no/such/folder.csv").path, options: options)) {
            XCTAssertTrue("\($0)".contains("no/such"), "\($0)")
        }
        options.saveLabeller = directory.file("no/such/labeller.safetensors").path
        XCTAssertThrowsError(try PseudoLabelling.run(data: data, labels: labels, out: out, options: options)) {
            XCTAssertTrue("\($0)".contains("no/such/labeller"), "\($0)")
        }
        XCTAssertThrowsError(try Labeller(path: labels)) { XCTAssertTrue("\($0)".contains("labels.csv: not a labeller"), "\($0)") }
        options.saveLabeller = nil
        options.suggestOut = directory.file("no/such/next.csv").path
        options.suggest = 3
        XCTAssertThrowsError(try PseudoLabelling.run(data: data, labels: labels, out: out, options: options)) {
            XCTAssertTrue("\($0)".contains("no/such/next.csv"), "\($0)")
        }
    }

    func testWarnsWhereTheHeldOutLabelsFindTheLabellerBelowTheLabelsAlone() {
        XCTAssertEqual(PseudoLabelReport.warning(heldOut: "test images", count: 734, labeller: 0.4877, labelsAlone: 0.5450),
                       "warning: on the 734 test images the labeller is below the same CNN trained on the labelled images alone " +
                       "(48.8% against 54.5%): its labels may mislead train --labeller; train --labels with the given labels alone, " +
                       "or label more (--suggest)")
        XCTAssertNil(PseudoLabelReport.warning(heldOut: "test images", count: 734, labeller: 0.5450, labelsAlone: 0.5450))
        XCTAssertNil(PseudoLabelReport.warning(heldOut: "held-out labelled images", count: 100, labeller: 0.86, labelsAlone: 0.82))
    }

    func testSuggestionsRankByTheGapBetweenTheTwoLikeliestClasses() {
        let p: [[Float]] = [[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.6, 0.1, 0.3], [0.2, 0.3, 0.5], [0.45, 0.1, 0.45]]
        // Margins 0.85, 0.05, 0.3, 0.2, 0: a third class's share plays no part.
        XCTAssertEqual(PseudoLabelling.suggestions(p, count: 3), [4, 1, 3])
        XCTAssertEqual(PseudoLabelling.suggestions(p, count: 9), [4, 1, 3, 2, 0])
        XCTAssertEqual(PseudoLabelling.suggestions(p, count: 0), [])
    }

    /// label --suggest: the unlabelled images the labeller is least sure between two classes of,
    /// with their label left for the user; filled in and added to the labels, the rows are read.
    func testSuggestsTheUnlabelledImagesItIsLeastSureOfWithTheLabelLeftEmpty() throws {
        let directory = try TemporaryDirectory("suggest")
        defer { directory.remove() }
        var (data, index, labels, text, options) = try tinyLabelled(directory)
        options.validationFraction = 0
        options.saveLabeller = directory.file("labeller.safetensors").path
        options.suggest = 6
        options.suggestOut = directory.file("next.csv").path
        let report = try PseudoLabelling.run(data: data, labels: labels, out: directory.file("all.csv").path, options: options)
        XCTAssertEqual(report.suggested, 6)
        XCTAssertEqual(report.suggestOut, options.suggestOut)
        let written = try String(contentsOfFile: options.suggestOut!, encoding: .utf8)
        XCTAssertFalse(written.contains("\n\n"), "no blank rows")
        let rows = CSV.parse(written).filter { $0.count == 7 }
        XCTAssertEqual(rows.first, ["path", "label", "predicted", "probability", "second", "second_probability", "margin"])
        let suggested = Array(rows.dropFirst())
        XCTAssertEqual(suggested.count, 6)
        XCTAssertTrue(suggested.allSatisfy { $0[1].isEmpty }, "the label is the user's to give")
        XCTAssertTrue(suggested.allSatisfy { Set([$0[2], $0[4]]) == ["even", "odd"] }, "the two likeliest classes")

        // They are the smallest margins of the saved labeller's probabilities over every unlabelled image.
        let saved = try Labeller(path: options.saveLabeller!)
        let unlabelled = Array(index.dropFirst(20))
        let images = try LabelledImages(dataset: data, rowClasses: index.map { $0.0 >= 20 ? 0 : -1 }, perBatch: 0, seed: 0).images
        let margins = saved.classifier.probabilities(images).map { abs($0[0] - $0[1]) }
        let sorted = margins.sorted()
        for (k, row) in suggested.enumerated() {
            XCTAssertTrue(unlabelled.map(\.1).contains(row[0]), row[0])
            XCTAssertEqual(Double(row[6])!, Double(sorted[k]), accuracy: 1e-4, row[0])
            XCTAssertEqual(Double(row[6])!, Double(row[3])! - Double(row[5])!, accuracy: 2e-4)
        }
        XCTAssertTrue(try LabelFile(path: options.suggestOut!).labelOf.isEmpty, "as it stands the file labels nothing")
        let filled = text + suggested.map { "\($0[0]),\($0[2]),\($0[2]),\($0[3])\n" }.joined()
        let more = try directory.write("more.csv", Array(filled.utf8)).path
        XCTAssertEqual(try LabelFile(path: more).labelOf.count, 26)
    }

    func testADeeperLabellerSavesAndLoadsItsExtraLayers() throws {
        let directory = try TemporaryDirectory("deep-labeller")
        defer { directory.remove() }
        var recipe = DownstreamClassifier.Recipe()
        recipe.width = 4
        let plain = DownstreamClassifier(imageSize: 16, channels: 1, classes: 3, recipe: recipe)
        recipe.depth = 2
        let deep = DownstreamClassifier(imageSize: 16, channels: 1, classes: 3, recipe: recipe)
        plain.network.isTraining = false
        deep.network.isTraining = false
        // 16 → 8 → 4: two sides, each with two [Conv 3×3, BatchNorm, LeakyReLU] more.
        XCTAssertEqual(deep.network.layers.count, plain.network.layers.count + 2 * 2 * 3)
        let threeByThree = deep.network.layers.compactMap { $0 as? Conv2d }.filter { $0.kernel == 3 }
        XCTAssertEqual(threeByThree.map(\.inChannels), [4, 4, 8, 8])
        var random = SeededRandom(seed: 7)
        let images = (0..<(5 * 16 * 16)).map { _ in random.nextUniform() * 2 - 1 }
        let path = directory.file("deep.safetensors").path
        try Labeller(classifier: deep, classes: ["a", "b", "c"]).write(to: path)
        let loaded = try Labeller(path: path)
        XCTAssertEqual(loaded.classifier.recipe.depth, 2)
        XCTAssertEqual(loaded.classifier.probabilities(images), deep.probabilities(images))

        // A labeller written before depth existed has no such key: it is the plain CNN.
        let plainPath = directory.file("plain.safetensors").path
        try Safetensors.write(Checkpoint.tensors(of: plain.network, prefix: ""),
                              metadata: ["format": Labeller.format, "image_size": "16", "channels": "1", "width": "4", "classes": "[\"a\",\"b\",\"c\"]"],
                              to: plainPath)
        XCTAssertEqual(try Labeller(path: plainPath).classifier.probabilities(images), plain.probabilities(images))
        // The same tensors read as a deeper network do not fit it, and the error names the file.
        let wrongPath = directory.file("wrong.safetensors").path
        try Safetensors.write(Checkpoint.tensors(of: plain.network, prefix: ""),
                              metadata: ["format": Labeller.format, "image_size": "16", "channels": "1", "width": "4", "depth": "2", "classes": "[\"a\",\"b\",\"c\"]"],
                              to: wrongPath)
        XCTAssertThrowsError(try Labeller(path: wrongPath)) { XCTAssertTrue("\($0)".contains("wrong.safetensors"), "\($0)") }
    }
}

/// index.csv's (row, path) pairs in row order.
enum DatasetIndexFile {
    static func rows(_ dataset: String) throws -> [(Int, String)] {
        let text = try String(contentsOfFile: dataset + "/index.csv", encoding: .utf8)
        return CSV.parse(text).dropFirst().compactMap { fields in Int(fields[0]).map { ($0, fields[2]) } }
    }
}
