import Dataset
import Foundation
import Formats
import GAN
import Imaging
import NN
import TestSupport
import XCTest

/// A prepared dataset written directly (shard + manifest), so these tests need no catalogue.
func writeTinyDataset(_ directory: TemporaryDirectory, count: Int = 48, size: Int = 32) throws -> String {
    let path = directory.file("dataset").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    var pixels: [UInt8] = []
    for index in 0..<count { pixels += Pictures.pattern(width: size, height: size, channels: 1, seed: index).pixels }
    _ = FileManager.default.createFile(atPath: path + "/shard-00000.npy", contents: nil)
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path + "/shard-00000.npy"))
    try pixels.withUnsafeBufferPointer { try Npy.write($0, dtype: .uint8, shape: [count, size, size, 1], to: handle) }
    try handle.close()
    let manifest = """
        {"format_version": 1, "size": \(size), "channels": 1, "count": \(count), "dtype": "uint8", "normalization": "x/127.5 - 1",
         "layout": "NHWC", "source_catalog": "test", "options": {"size": \(size), "channels": 1, "fit": "crop", "drop_near_duplicates": false,
         "dtype": "uint8", "jobs": 1, "background": [255, 255, 255], "shard_bytes": 67108864},
         "shards": [{"file": "shard-00000.npy", "count": \(count)}], "skipped": 0, "skipped_files": [],
         "created_at": "2026-01-01T00:00:00Z", "darkroom_version": "test"}
        """
    try Data(manifest.utf8).write(to: URL(fileURLWithPath: path + "/dataset.json"))
    let index = "row,shard,path,sha256\n" + (0..<count).map { "\($0),0,pattern-\($0).png,\(String(repeating: "0", count: 64))" }.joined(separator: "\n") + "\n"
    try Data(index.utf8).write(to: URL(fileURLWithPath: path + "/index.csv"))
    return path
}

/// Trains a tiny model (`TrainOptions.tiny`) for one epoch into `directory/run`.
func trainTinyRun(_ directory: TemporaryDirectory, data: String, ema: Float? = nil) throws -> String {
    var options = TrainOptions.tiny(data: data, out: directory.file("run").path)
    options.epochs = 1
    options.ema = ema
    _ = try TrainingRun(options: options).train()
    return options.out
}

final class GANTests: XCTestCase {
    private let small = DCGANConfiguration(imageSize: 32, channels: 1, nz: 16, ngf: 8, ndf: 8)
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("gan") }
    override func tearDown() { directory.remove() }

    private func realBatch(_ count: Int = 8) -> Tensor {
        let images = (0..<count).flatMap { Pictures.pattern(width: 32, height: 32, channels: 1, seed: $0).pixels.map { Float($0) / 127.5 - 1 } }
        return Tensor(shape: [count, 1, 32, 32], values: images)
    }

    private func options(epochs: Int, out: String, data: String) -> TrainOptions {
        var options = TrainOptions.tiny(data: data, out: out)
        options.epochs = epochs
        return options
    }

    func testArchitectureFollowsTheImageSize() {
        for (size, blocks) in [(32, 3), (64, 4)] {
            let configuration = DCGANConfiguration(imageSize: size, channels: 3, nz: 10, ngf: 4, ndf: 4)
            let generator = DCGAN.generator(configuration, backend: .fast), discriminator = DCGAN.discriminator(configuration, backend: .fast)
            XCTAssertEqual(generator.layers.filter { $0 is ConvTranspose2d }.count, blocks + 1)
            XCTAssertEqual(generator.layers.filter { $0 is BatchNorm2d }.count, blocks)
            XCTAssertEqual(discriminator.layers.filter { $0 is Conv2d }.count, blocks + 1)
            XCTAssertEqual(discriminator.layers.filter { $0 is BatchNorm2d }.count, blocks - 1, "no BatchNorm on D's first block")
            XCTAssertTrue(generator.layers.last is Tanh)
            let images = generator.forward(Tensor(shape: [2, 10, 1, 1], values: (0..<20).map { Float($0) / 20 }))
            XCTAssertEqual(images.shape, [2, 3, size, size])
            XCTAssertEqual(discriminator.forward(images.plain()).shape, [2, 1, 1, 1])
            XCTAssertEqual(generator.parameters.first?.name, "main.0.weight")
            XCTAssertEqual(generator.parameters.first?.value.shape, [10, 4 << (blocks - 1), 4, 4], "ConvTranspose2d weight is [in, out, k, k]")
        }
    }

    /// G's blocks: the stem makes 4×4 maps of ngf·2^(blocks−1) channels, the upsampling blocks
    /// end at S/2 with ngf, toImage makes the images; block by block is the whole chain, forward
    /// and backward (weight gradients equal).
    func testGeneratorBlocksAreTheWholeChain() {
        let configuration = DCGANConfiguration(imageSize: 32, channels: 1, nz: 6, ngf: 4, ndf: 4)
        let generator = DCGAN.generator(configuration, backend: .fast)
        var random = SeededRandom(seed: 2)
        Initialization.dcgan(generator.layers, random: &random)
        let latents = (0..<18).map { _ in random.nextNormal() }
        let input = configuration.generatorInput(latents: latents)
        XCTAssertEqual(generator.network.forward(input, layers: generator.stem).shape, [3, 16, 4, 4])
        XCTAssertEqual(generator.network.forward(generator.network.forward(input, layers: generator.stem), layers: generator.upsampling).shape,
                       [3, 4, 16, 16])
        let images = generator.forward(latents: latents).plain().values
        XCTAssertEqual(images, generator.network.forward(input).plain().values)
        XCTAssertEqual(images.count, 3 * 32 * 32)

        let gradient = Tensor(shape: [3, 1, 32, 32], values: (0..<3072).map { _ in random.nextUniform() - 0.5 })
        generator.zeroGradients()
        _ = generator.forward(input)
        generator.backward(gradient)
        let byBlocks = generator.parameters.map(\.gradient.values)
        generator.zeroGradients()
        _ = generator.network.forward(input)
        _ = generator.network.backward(gradient)
        XCTAssertEqual(byBlocks, generator.parameters.map(\.gradient.values))
        XCTAssertTrue(byBlocks.contains { $0.contains { $0 != 0 } })
    }

    func testInitialisationIsDCGANs() {
        let trainer = DCGANTrainer(configuration: DCGANConfiguration(imageSize: 64, channels: 3), options: StepOptions(), seed: 3)
        let weights = trainer.discriminator.layers.compactMap { ($0 as? Conv2d)?.weight.value.values }.flatMap { $0 }
        let mean = weights.reduce(0, +) / Float(weights.count)
        let std = (weights.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(weights.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 1e-3)
        XCTAssertEqual(std, 0.02, accuracy: 1e-3)
        let scales = trainer.generator.layers.compactMap { ($0 as? BatchNorm2d)?.weight.value.values }.flatMap { $0 }
        XCTAssertEqual(scales.reduce(0, +) / Float(scales.count), 1, accuracy: 5e-3)
    }

    func testStepsMoveTheLossesAndBothNetworks() {
        let trainer = DCGANTrainer(configuration: small, options: StepOptions(), seed: 1)
        let generatorBefore = trainer.generator.parameters[0].value.values, discriminatorBefore = trainer.discriminator.parameters[0].value.values
        let real = realBatch()
        let first = trainer.step(real: real)
        var last = first
        for _ in 0..<20 { last = trainer.step(real: real) }
        XCTAssertTrue(first.lossD.isFinite && last.lossG.isFinite)
        XCTAssertNotEqual(first.lossD, last.lossD)
        XCTAssertLessThan(last.lossD, first.lossD, "D learns to tell a fixed real batch from early fakes")
        XCTAssertNotEqual(trainer.generator.parameters[0].value.values, generatorBefore)
        XCTAssertNotEqual(trainer.discriminator.parameters[0].value.values, discriminatorBefore)
    }

    /// The whole step (both networks, both optimisers, BatchNorm batches) agrees between backends.
    func testFastAndReferenceStepsAgree() {
        let fast = DCGANTrainer(configuration: small, options: StepOptions(backend: .fast), seed: 5)
        let reference = DCGANTrainer(configuration: small, options: StepOptions(backend: .reference), seed: 5)
        let real = realBatch(4)
        for _ in 0..<3 {
            let a = fast.step(real: real), b = reference.step(real: real)
            XCTAssertEqual(a.lossD, b.lossD, accuracy: 1e-3 * max(1, abs(b.lossD)))
            XCTAssertEqual(a.lossG, b.lossG, accuracy: 1e-3 * max(1, abs(b.lossG)))
            XCTAssertEqual(a.dReal, b.dReal, accuracy: 1e-3)
        }
        let fastWeights = fast.generator.parameters.last!.value.values, referenceWeights = reference.generator.parameters.last!.value.values
        XCTAssertLessThan(zip(fastWeights, referenceWeights).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// `bench train-step --profile` times each layer, and splits the iteration by oneDNN primitive
    /// kind, what is left being the Swift code between primitives: the parts add up to the whole.
    func testTrainStepProfileSplitsTheIterationByPrimitiveKind() {
        let plain = TrainStepBenchmark.run(configuration: small, batch: 4, iterations: 1, warmup: 1)
        XCTAssertNil(plain.layers)
        XCTAssertNil(plain.primitives)
        let profiled = TrainStepBenchmark.run(configuration: small, batch: 4, iterations: 2, warmup: 1, profile: true)
        XCTAssertFalse(profiled.layers?.isEmpty ?? true)
        let kinds = profiled.primitives ?? []
        let byKind = Dictionary(uniqueKeysWithValues: kinds.map { ($0.kind, $0.millisecondsPerIteration) })
        XCTAssertGreaterThan(byKind["convolution"] ?? 0, 0, "\(byKind)")
        XCTAssertGreaterThan(byKind["batch_normalization"] ?? 0, 0, "\(byKind)")
        XCTAssertNotNil(byKind["outside_onednn"])
        XCTAssertTrue(kinds.allSatisfy { $0.millisecondsPerIteration >= 0 }, "\(byKind)")
        XCTAssertEqual(kinds.map(\.share).reduce(0, +), 1, accuracy: 1e-9)
        XCTAssertEqual(kinds.map(\.millisecondsPerIteration), kinds.map(\.millisecondsPerIteration).sorted(by: >), "largest first")
    }

    func testCheckpointsRoundTripEveryTensorAndTheTrainingState() throws {
        let trainer = DCGANTrainer(configuration: small, options: StepOptions(), seed: 1)
        for _ in 0..<3 { trainer.step(real: realBatch()) }
        let path = directory.file("checkpoint.safetensors").path
        let progress = TrainingProgress(epoch: 2, batchInEpoch: 5, iteration: 17)
        try Checkpoint.save(trainer, progress: progress, ema: nil, extra: [:], to: path)
        let restored = DCGANTrainer(configuration: small, options: StepOptions(), seed: 99)
        XCTAssertEqual(try Checkpoint.restore(restored, ema: nil, from: path), progress)
        for (a, b) in zip(trainer.generator.parameters + trainer.discriminator.parameters, restored.generator.parameters + restored.discriminator.parameters) {
            XCTAssertEqual(a.value.values, b.value.values, a.name)
        }
        for (a, b) in zip(trainer.generatorOptimizer.secondMoments, restored.generatorOptimizer.secondMoments) { XCTAssertEqual(a.values, b.values) }
        XCTAssertEqual(restored.noise, trainer.noise)
        XCTAssertEqual(restored.discriminatorOptimizer.stepCount, 3)
        let norms = zip(trainer.generator.layers.compactMap { $0 as? BatchNorm2d }, restored.generator.layers.compactMap { $0 as? BatchNorm2d })
        for (a, b) in norms {
            XCTAssertEqual(a.runningVariance.values, b.runningVariance.values)
            XCTAssertEqual(b.batchesTracked, 3)
        }
        let names = try Safetensors.read(path: path).tensors.keys
        XCTAssertTrue(names.contains("main.0.weight") && names.contains("main.1.running_mean") && names.contains("main.1.num_batches_tracked"))
        XCTAssertTrue(names.contains("discriminator.main.0.weight") && names.contains("adam.generator.main.0.weight.exp_avg"))
        // Same next step from both.
        XCTAssertEqual(trainer.step(real: realBatch()), restored.step(real: realBatch()))
    }

    func testResumedRunReproducesAnUninterruptedRun() throws {
        let data = try writeTinyDataset(directory)
        let straight = directory.file("straight").path, resumed = directory.file("resumed").path
        XCTAssertEqual(try TrainingRun(options: options(epochs: 2, out: straight, data: data)).train(), .finished)
        // Stop mid-epoch (iteration 4 of 6 per epoch), then resume.
        var steps = 0
        XCTAssertEqual(try TrainingRun(options: options(epochs: 2, out: resumed, data: data)).train(stopRequested: { steps += 1; return steps == 4 }), .stopped)
        var resuming = options(epochs: 2, out: resumed, data: data)
        resuming.resume = true
        XCTAssertEqual(try TrainingRun(options: resuming).train(), .finished)
        func losses(_ run: String) throws -> [String] {
            try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
                let metrics = try JSONDecoder().decode(MetricsLine.self, from: Data(line.utf8))
                return "\(metrics.iteration) \(metrics.lossD) \(metrics.lossG) \(metrics.dReal) \(metrics.dFake)"
            }
        }
        XCTAssertEqual(try losses(resumed), try losses(straight))
        XCTAssertEqual(try losses(straight).count, 12)
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors").tensors
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors").tensors
        XCTAssertEqual(a["main.0.weight"], b["main.0.weight"])
        // Without --resume an existing run is not overwritten.
        XCTAssertThrowsError(try TrainingRun(options: options(epochs: 2, out: straight, data: data)).train()) {
            XCTAssertTrue("\($0)".contains("--resume"))
        }
    }

    func testNonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        let data = try writeTinyDataset(directory)
        let out = directory.file("run").path
        let run = try TrainingRun(options: options(epochs: 3, out: out, data: data))
        XCTAssertThrowsError(try run.train(report: { line, _ in
            // Poison D after the first step of epoch 2 (the epoch-1 checkpoint is written): the next loss is NaN.
            if line.iteration == 7 { run.trainer.discriminator.parameters[0].value[0] = .nan }
        })) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("iteration 8"), message)
            XCTAssertTrue(message.contains("latest.safetensors"), message)
        }
        let (_, _, _, metadata) = try Checkpoint.configuration(at: out + "/checkpoints/latest.safetensors")
        XCTAssertEqual(metadata["iteration"], "6")
        XCTAssertFalse(try Safetensors.read(path: out + "/checkpoints/latest.safetensors").tensors["discriminator.main.0.weight"]!.floats.contains { $0.isNaN })
    }

    func testBadWeightsNeverReplaceAGoodCheckpoint() throws {
        let data = try writeTinyDataset(directory)
        let out = directory.file("run").path
        let run = try TrainingRun(options: options(epochs: 2, out: out, data: data))
        // Poisoned on the epoch's last step, before its checkpoint: no loss has shown it yet.
        XCTAssertThrowsError(try run.train(report: { line, _ in
            if line.iteration == 6 { run.trainer.generator.parameters[0].value[0] = .infinity }
        })) { XCTAssertTrue("\($0)".contains("iteration 6"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoints/latest.safetensors"))
    }

    func testSampleGridsAreValidPNGsOfTheRightSize() throws {
        let data = try writeTinyDataset(directory)
        let out = directory.file("run").path
        var settings = options(epochs: 1, out: out, data: data)
        settings.ema = 0.9
        XCTAssertEqual(try TrainingRun(options: settings).train(), .finished)
        for name in ["real.png", "epoch-001.png"] {
            let image = try PNG.decode(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/samples/" + name))))
            XCTAssertEqual(image.channels, 1)
            XCTAssertEqual(image.width, 8 * 34 + 2, name)
        }
        XCTAssertEqual(try PNG.decode(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/samples/real.png")))).height, 2 + 34)
        XCTAssertTrue(try Safetensors.read(path: out + "/checkpoints/epoch-001.safetensors").tensors.keys.contains("ema.main.0.weight"))
    }
}

final class GenerationTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var run: String { directory.file("run").path }
    private var data: String!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory("generate")
        data = try writeTinyDataset(directory, count: 24)
        _ = try trainTinyRun(directory, data: data, ema: 0.5)
    }

    override func tearDown() { directory.remove() }

    func testImagesMetadataAndLatentsAgreeAndRegenerateExactly() throws {
        let generator = try TrainedGenerator(run: run)
        XCTAssertTrue(generator.usesAverage)
        let out = directory.file("gen").path
        var options = GenerationOptions(count: 10)
        options.batch = 4
        options.seed = 7
        let rows = try Generation.write(generator, options: options, to: out)
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/images").sorted()
        XCTAssertEqual(files, (0..<10).map { String(format: "%06d.png", $0) })
        let metadata = try String(contentsOfFile: out + "/metadata.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(GeneratedImage.self, from: Data($0.utf8)) }
        XCTAssertEqual(metadata, rows)
        XCTAssertEqual(metadata.map(\.fileName), files.map { "images/" + $0 })
        XCTAssertTrue(metadata.allSatisfy { $0.source == "synthetic" && $0.checkpoint == generator.checkpointDigest && $0.seed == 7 })

        // latents.npy regenerates every image exactly, and image 3 alone from (seed, index).
        let latents = try Generation.readLatents(out + "/latents.npy", nz: 16)
        XCTAssertEqual(latents.count, 10 * 16)
        XCTAssertEqual(Array(latents[48..<64]), generator.latent(seed: 7, index: 3))
        let images = generator.images(latents: latents)
        for index in [0, 3, 9] {
            let written = try PNG.decode(Array(try Data(contentsOf: URL(fileURLWithPath: out + String(format: "/images/%06d.png", index)))))
            XCTAssertEqual(written, generator.pixelImage(images, index: index))
        }
    }

    func testPsiScalesEveryLatentAndRowsRecordIt() throws {
        let generator = try TrainedGenerator(run: run)
        XCTAssertEqual(generator.latent(seed: 7, index: 3, psi: 1.5), generator.latent(seed: 7, index: 3).map { $0 * 1.5 })
        var options = GenerationOptions(count: 6)
        options.seed = 7
        options.psi = 1.5
        let out = directory.file("wide").path
        let rows = try Generation.write(generator, options: options, to: out)
        XCTAssertTrue(rows.allSatisfy { $0.psi == 1.5 })
        let latents = try Generation.readLatents(out + "/latents.npy", nz: 16)
        XCTAssertEqual(latents, (0..<6).flatMap { generator.latent(seed: 7, index: $0).map { $0 * 1.5 } })
        // The written images are G's of the scaled latents, not of the prior's.
        let written = try PNG.decode(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/images/000002.png"))))
        XCTAssertEqual(written, generator.pixelImage(generator.images(latents: Array(latents[32..<48])), index: 0))
        XCTAssertNotEqual(written, generator.pixelImage(generator.images(latents: generator.latent(seed: 7, index: 2)), index: 0))
        // ψ 1 is G's prior: the rows carry no psi key, as before the option existed.
        options.psi = 1
        try Generation.write(generator, options: options, to: directory.file("prior").path)
        XCTAssertFalse(try String(contentsOfFile: directory.file("prior/metadata.jsonl").path, encoding: .utf8).contains("psi"))
        XCTAssertTrue(try String(contentsOfFile: out + "/metadata.jsonl", encoding: .utf8).contains("\"psi\":1.5"))
    }

    func testRefusesNonEmptyOutputUnlessOverwriting() throws {
        let generator = try TrainedGenerator(run: run)
        let out = directory.file("gen").path
        try directory.write("gen/precious.txt", Array("keep".utf8))
        XCTAssertThrowsError(try Generation.write(generator, options: GenerationOptions(count: 2), to: out)) {
            XCTAssertTrue("\($0)".contains("--overwrite"))
        }
        var options = GenerationOptions(count: 2)
        options.overwrite = true
        try Generation.write(generator, options: options, to: out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/precious.txt"))
        // Overwriting with fewer images leaves no stale ones behind.
        options.count = 5
        try Generation.write(generator, options: options, to: out)
        options.count = 3
        try Generation.write(generator, options: options, to: out)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/images").count, 3)
        XCTAssertThrowsError(try TrainedGenerator(run: run, checkpoint: "epoch-9")) { XCTAssertTrue("\($0)".contains("epoch-009")) }
    }

    func testAugmentationSetMixesRealAndSyntheticRows() throws {
        let generator = try TrainedGenerator(run: run, average: false)
        XCTAssertFalse(generator.usesAverage)
        var options = GenerationOptions(count: 0)
        options.augment = data
        options.ratio = 0.5
        options.format = "jpg"
        let rows = try Generation.write(generator, options: options, to: directory.file("augmented").path)
        XCTAssertEqual(rows.filter { $0.source == "real" }.count, 24)
        XCTAssertEqual(rows.filter { $0.source == "synthetic" }.count, 12)
        XCTAssertTrue(rows.allSatisfy { $0.fileName.hasSuffix(".jpg") })
        XCTAssertEqual(rows.first { $0.source == "real" }?.path, "pattern-0.png")
        // Real rows are the dataset's pixels.
        let first = try JPEG.decode(Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("augmented/images/real-000000.jpg").path))))
        let expected = Pictures.pattern(width: 32, height: 32, channels: 1, seed: 0).pixels
        XCTAssertLessThan(zip(first.pixels, expected).map { abs(Int($0) - Int($1)) }.reduce(0, +) / expected.count, 3)
    }

    func testInterpolationGridHasOneRowPerWalk() throws {
        let grid = Generation.interpolationGrid(try TrainedGenerator(run: run), walks: 3, steps: 5, seed: 1)
        XCTAssertEqual([grid.width, grid.height], [5 * 34 + 2, 3 * 34 + 2])
    }
}

final class EmbeddingAndProbeTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var run: String { directory.file("run").path }
    private var data: String!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory("embed")
        data = try writeTinyDataset(directory, count: 20)
        _ = try trainTinyRun(directory, data: data)
    }

    override func tearDown() { directory.remove() }

    func testFeatureWidthIsTheDocumentedOneAndRowsFollowTheDataset() throws {
        for layers in [FeatureLayers.all, .last] {
            let extractor = try FeatureExtractor(run: run, layers: layers)
            // 32 px, ndf 8: blocks of 8, 16, 32 channels, each pooled to 4×4.
            XCTAssertEqual(extractor.dimension, layers == .all ? 16 * (8 + 16 + 32) : 16 * 32)
            let prefix = directory.file("features-\(layers.rawValue)").path
            XCTAssertEqual(try Embedding.write(extractor, source: .dataset(data), prefix: prefix, batch: 7), 20)
            let (header, _) = try Npy.read(path: prefix + ".npy")
            XCTAssertEqual(header.shape, [20, extractor.dimension])
            let rows = CSV.parse(try String(contentsOfFile: prefix + ".csv", encoding: .utf8))
            XCTAssertEqual(rows.first, ["row", "path", "sha256"])
            XCTAssertEqual(rows.dropFirst().map { $0[1] }, (0..<20).map { "pattern-\($0).png" })
        }
    }

    func testFeaturesAreTheMaxPooledBlockActivationsAndFilesDecodeAsPrepareDoes() throws {
        let extractor = try FeatureExtractor(run: run, layers: .last)
        // Pooling: a 4×4-window maximum.
        let tensor = Tensor(shape: [1, 1, 8, 8], values: (0..<64).map(Float.init))
        XCTAssertEqual(Array(MaxPoolToGrid.reference(tensor).prefix(4)), [9, 11, 13, 15])
        XCTAssertEqual(MaxPoolToGrid()(tensor).values, MaxPoolToGrid.reference(tensor))
        // Image files give the same features as the same pixels from a prepared dataset.
        let picture = Pictures.pattern(width: 32, height: 32, channels: 1, seed: 3)
        let file = try directory.write("loose/3.png", try PNG.encode(picture)).path
        let decoder = SampleDecoder(size: 32, channels: 1, fit: .crop, background: [255, 255, 255])
        try Embedding.write(extractor, source: .files([(Array(file.utf8), "3.png", "")], decoder: decoder), prefix: directory.file("one").path)
        try Embedding.write(extractor, source: .dataset(data), prefix: directory.file("all").path)
        let one = try Npy.read(path: directory.file("one.npy").path).data, all = try Npy.read(path: directory.file("all.npy").path).data
        let width = extractor.dimension * 4
        XCTAssertEqual(one, Array(all[3 * width..<4 * width]))
    }

    func testProbeRecoversAPlantedLinearRule() throws {
        var random = SeededRandom(seed: 3)
        let count = 600, dimension = 12, classes = 3
        let truth = (0..<classes * dimension).map { _ in random.nextNormal() }
        var features: [Float] = [], csv = "row,path,sha256\n", labels = "path,label\n"
        for n in 0..<count {
            let x = (0..<dimension).map { _ in random.nextNormal() * 3 + 1 }
            features += x
            let scores = (0..<classes).map { k in zip(x, truth[k * dimension..<(k + 1) * dimension]).map(*).reduce(0, +) }
            csv += "\(n),item-\(n),\n"
            labels += "item-\(n),class-\(scores.firstIndex(of: scores.max()!)!)\n"
        }
        let prefix = directory.file("planted").path
        _ = FileManager.default.createFile(atPath: prefix + ".npy", contents: nil)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: prefix + ".npy"))
        try features.withUnsafeBufferPointer { try Npy.write($0, dtype: .float32, shape: [count, dimension], to: handle) }
        try handle.close()
        try Data(csv.utf8).write(to: URL(fileURLWithPath: prefix + ".csv"))
        try Data(labels.utf8).write(to: directory.file("labels.csv"))
        let result = try Probe.run(features: prefix, labels: directory.file("labels.csv").path, testFraction: 0.25, seed: 1)
        XCTAssertEqual(result.classes, ["class-0", "class-1", "class-2"])
        XCTAssertEqual(result.testCount, 150)
        XCTAssertGreaterThan(result.testAccuracy, 0.9)
        // Shuffled labels carry no rule: accuracy near chance.
        let shuffled = "path,label\n" + (0..<count).map { "item-\($0),class-\(($0 * 7) % 3)" }.joined(separator: "\n")
        try Data(shuffled.utf8).write(to: directory.file("noise.csv"))
        XCTAssertLessThan(try Probe.run(features: prefix, labels: directory.file("noise.csv").path, seed: 1).testAccuracy, 0.6)
    }

    /// Generation and embedding in bf16 (batch normalisation in evaluation mode and the pooled
    /// features reading bf16 activations) stay within bf16's rounding of fp32.
    func testBF16SamplesAndFeaturesStayCloseToFP32() throws {
        try XCTSkipUnless(Precision.bf16Computable, "oneDNN computes bf16 only with AVX-512")
        let configuration = DCGANConfiguration(imageSize: 32, channels: 1, nz: 16, ngf: 16, ndf: 16)
        func relativeError(_ a: [Float], _ b: [Float]) -> Float {
            let difference = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, norm = b.reduce(0) { $0 + $1 * $1 }
            return (difference / norm).squareRoot()
        }
        var random = SeededRandom(seed: 7)
        let latents = (0..<8 * 16).map { _ in random.nextUniform() * 2 - 1 }
        var samples: [[Float]] = []
        for precision in [Precision.fp32, .bf16] {
            let generator = Generator(configuration, backend: .fast)
            var initialization = SeededRandom(seed: 3)
            Initialization.dcgan(generator.layers, random: &initialization)
            generator.setPrecision(precision)
            generator.isTraining = false
            samples.append(generator.forward(latents: latents).values)
        }
        let sampleError = relativeError(samples[1], samples[0])
        XCTAssertLessThan(sampleError, 2e-2)
        XCTAssertGreaterThan(sampleError, 1e-5, "bf16 gave the fp32 samples, so it did not run")

        let images = Tensor(shape: [8, 1, 32, 32], values: samples[0])
        let fp32 = FeatureExtractor(configuration: configuration, seed: 3).features(images)
        let bf16 = FeatureExtractor(configuration: configuration, seed: 3, precision: .bf16).features(images)
        XCTAssertEqual(fp32.count, bf16.count)
        let featureError = relativeError(bf16, fp32)
        XCTAssertLessThan(featureError, 2e-2)
        XCTAssertGreaterThan(featureError, 1e-5, "bf16 gave the fp32 features, so it did not run")
    }

}

final class DiffAugmentTests: XCTestCase {
    func testPolicyParsing() {
        XCTAssertEqual(DiffAugmentPolicy("color,translation,cutout"), DiffAugmentPolicy(color: true, translation: true, cutout: true))
        XCTAssertEqual(DiffAugmentPolicy("cutout"), DiffAugmentPolicy(cutout: true))
        XCTAssertNil(DiffAugmentPolicy("colour"))
    }

    /// With the draws fixed, backward must be the exact gradient of forward (finite differences).
    func testBackwardIsTheGradientOfForward() {
        for (policy, probability) in [(DiffAugmentPolicy(color: true), Float(1)), (DiffAugmentPolicy(translation: true), 1), (DiffAugmentPolicy(cutout: true), 1),
                                      (DiffAugmentPolicy(color: true, translation: true, cutout: true), 1),
                                      (DiffAugmentPolicy(color: true, translation: true, cutout: true), 0.5)] {
            let augment = DiffAugment(policy: policy)
            var seed = SeededRandom(seed: 4)
            let x = Tensor(shape: [2, 3, 8, 8], values: (0..<384).map { _ in seed.nextUniform() * 2 - 1 })
            let weights = (0..<384).map { _ in seed.nextUniform() * 2 - 1 }
            func loss() -> Double {
                var random = SeededRandom(seed: 11)
                let y = augment.forward(x, probability: probability, random: &random)
                return (0..<y.count).reduce(0.0) { $0 + Double(y[$1]) * Double(weights[$1]) }
            }
            _ = loss()
            let analytic = augment.backward(Tensor(shape: [2, 3, 8, 8], values: weights)).values
            for index in stride(from: 0, to: 384, by: 23) {
                let saved = x[index]
                x[index] = saved + 0.01; let plus = loss()
                x[index] = saved - 0.01; let minus = loss()
                x[index] = saved
                XCTAssertEqual(Double(analytic[index]), (plus - minus) / 0.02, accuracy: 1e-3, "\(policy) element \(index)")
            }
        }
    }

    func testTrainingWithDiffAugmentMovesTheLosses() {
        let configuration = DCGANConfiguration(imageSize: 32, channels: 1, nz: 16, ngf: 8, ndf: 8)
        let trainer = DCGANTrainer(configuration: configuration, options: StepOptions(diffAugment: DiffAugmentPolicy("color,translation,cutout")!), seed: 2)
        let real = Tensor(shape: [8, 1, 32, 32], values: (0..<8).flatMap { Pictures.pattern(width: 32, height: 32, channels: 1, seed: $0).pixels.map { Float($0) / 127.5 - 1 } })
        let first = trainer.step(real: real)
        var last = first
        for _ in 0..<10 { last = trainer.step(real: real) }
        XCTAssertTrue(last.lossD.isFinite && last.lossG.isFinite)
        XCTAssertNotEqual(first.lossG, last.lossG)
    }
}

final class AdaptiveAugmentationTests: XCTestCase {
    private let configuration = DCGANConfiguration(imageSize: 32, channels: 1, nz: 16, ngf: 8, ndf: 8)
    private let real = Tensor(shape: [8, 1, 32, 32], values: (0..<8).flatMap { Pictures.pattern(width: 32, height: 32, channels: 1, seed: $0).pixels.map { Float($0) / 127.5 - 1 } })

    func testProbabilityAppliesEachOperationToAboutThatShareOfImages() {
        let augment = DiffAugment(policy: DiffAugmentPolicy(cutout: true))
        var random = SeededRandom(seed: 3)
        let x = Tensor(shape: [400, 1, 8, 8], values: [Float](repeating: 1, count: 400 * 64))
        let y = augment.forward(x, probability: 0.25, random: &random)
        let touched = (0..<400).filter { image in (0..<64).contains { y[image * 64 + $0] == 0 } }.count
        XCTAssertEqual(Double(touched) / 400, 0.25, accuracy: 0.06)
        var again = SeededRandom(seed: 3)
        XCTAssertEqual(augment.forward(x, probability: 0, random: &again).values, x.values, "p = 0 changes nothing")
    }

    /// r_t above the target raises p by batch·interval/500k per interval; below it lowers p, never under 0.
    func testControllerStepsTowardsTheTarget() {
        var ada = AdaptiveAugmentation(target: 0.6)
        let confident = Tensor(shape: [64, 1, 1, 1], values: [Float](repeating: 2, count: 64))
        for _ in 0..<3 { ada.observe(realLogits: confident, batch: 64) }
        XCTAssertEqual(ada.probability, 0, "p moves only every 4 steps")
        ada.observe(realLogits: confident, batch: 64)
        XCTAssertEqual(ada.probability, 64 * 4 / 500_000, accuracy: 1e-9)
        XCTAssertEqual(ada.lastOverfitting, 1)
        for _ in 0..<4 * 9 { ada.observe(realLogits: confident, batch: 64) }
        XCTAssertEqual(ada.probability, 10 * 64 * 4 / 500_000, accuracy: 1e-6)
        let unsure = Tensor(shape: [64, 1, 1, 1], values: (0..<64).map { $0 % 2 == 0 ? 1 : -1 })
        for _ in 0..<4 * 20 { ada.observe(realLogits: unsure, batch: 64) }
        XCTAssertEqual(ada.probability, 0, "r_t 0 < 0.6: p falls back and stops at 0")
    }

    /// At p = 0 an adaptive trainer is exactly a trainer without augmentation; once D is sure of
    /// the reals p rises and the run diverges from the plain one.
    func testAdaptiveTrainingStartsAsPlainTrainingAndRaisesPWhenDOverfits() {
        let plain = DCGANTrainer(configuration: configuration, options: StepOptions(), seed: 2)
        let adaptive = DCGANTrainer(configuration: configuration, options: StepOptions(diffAugment: DiffAugmentPolicy("color,translation,cutout")!, adaTarget: 0.6), seed: 2)
        for _ in 0..<3 { XCTAssertEqual(plain.step(real: real), adaptive.step(real: real)) }
        for _ in 0..<60 { adaptive.step(real: real) }
        XCTAssertGreaterThan(adaptive.augmentProbability, 0, "D learns the fixed batch: r_t > 0.6 raises p")
        XCTAssertGreaterThan(adaptive.adaptive?.lastOverfitting ?? 0, 0.6)
    }

    func testAugmentChoicesResolveAgainstTheDatasetSize() throws {
        var options = TrainOptions(data: "d", out: "o")
        options.augment = "auto"
        XCTAssertEqual(try options.resolvedStep(datasetCount: 800).adaTarget, 0.6)
        XCTAssertEqual(try options.resolvedStep(datasetCount: 800).diffAugment, DiffAugmentPolicy("color,translation,cutout"))
        XCTAssertTrue(try options.resolvedStep(datasetCount: 70_000).diffAugment.isEmpty)
        options.augment = "ada:translation"
        XCTAssertEqual(try options.resolvedStep(datasetCount: 70_000).diffAugment, DiffAugmentPolicy(translation: true))
        options.augment = "color,cutout"
        XCTAssertNil(try options.resolvedStep(datasetCount: 10).adaTarget)
        options.augment = "sometimes"
        XCTAssertThrowsError(try options.resolvedStep(datasetCount: 10)) { XCTAssertTrue("\($0)".contains("--augment sometimes")) }
    }
}

final class KimgAndAverageTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("kimg") }
    override func tearDown() { directory.remove() }

    private func options(out: String, data: String) -> TrainOptions {
        var options = TrainOptions.tiny(data: data, out: out)
        options.kimg = 0.4  // 50 iterations of 8: eight epochs of 6 and two steps into the ninth
        options.snapshotKimg = 0.2
        options.augment = "ada"
        options.ema = 0.999
        return options
    }

    func testKimgRunsStopMidEpochSnapshotAndResumeExactly() throws {
        let data = try writeTinyDataset(directory)
        let straight = directory.file("straight").path, resumed = directory.file("resumed").path
        let run = try TrainingRun(options: options(out: straight, data: data))
        XCTAssertEqual(run.totalIterations, 50)
        XCTAssertEqual(try run.train(), .finished)
        let lines = try String(contentsOfFile: straight + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8)) }
        XCTAssertEqual(lines.map(\.iteration), Array(1...50))
        XCTAssertEqual(lines.last?.epoch, 9)
        XCTAssertEqual(lines.last?.kimg ?? 0, 0.4, accuracy: 1e-9)
        XCTAssertNotNil(lines.last?.augmentP)
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: straight + "/checkpoints").sorted()
        XCTAssertEqual(checkpoints, ["kimg-0000.2.safetensors", "kimg-0000.4.safetensors", "latest.safetensors"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: straight + "/samples/kimg-0000.2.png"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: straight + "/samples/epoch-001.png"), "a kimg run snapshots by kimg, not by epoch")

        // Stopped at iteration 4 and resumed: the same losses, weights, average and ADA state.
        var steps = 0
        XCTAssertEqual(try TrainingRun(options: options(out: resumed, data: data)).train(stopRequested: { steps += 1; return steps == 4 }), .stopped)
        var resuming = options(out: resumed, data: data)
        resuming.resume = true
        XCTAssertEqual(try TrainingRun(options: resuming).train(), .finished)
        XCTAssertEqual(try String(contentsOfFile: resumed + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            let m = try JSONDecoder().decode(MetricsLine.self, from: Data(line.utf8)); return [m.lossD, m.lossG, m.augmentP ?? -1] },
                       lines.map { [$0.lossD, $0.lossG, $0.augmentP ?? -1] })
        let a = try Safetensors.read(path: straight + "/checkpoints/latest.safetensors")
        let b = try Safetensors.read(path: resumed + "/checkpoints/latest.safetensors")
        for name in ["main.0.weight", "ema.main.0.weight", "ema.main.1.running_mean", "discriminator.main.2.weight"] {
            XCTAssertEqual(a.tensors[name], b.tensors[name], name)
        }
        XCTAssertEqual(a.metadata["ada_state"], b.metadata["ada_state"])
        XCTAssertNotNil(a.metadata["ada_state"])
        XCTAssertEqual(try TrainedGenerator(run: straight, checkpoint: "kimg-0.4").checkpointPath, straight + "/checkpoints/kimg-0000.4.safetensors")
    }

    /// The failure seen on a small folder: with --ema 0.999 and no ramp-up the average stayed the
    /// initial network, and BatchNorm statistics copied from G did not fit it (flat grey samples).
    func testTheAverageFollowsAShortRunAndHasItsOwnBatchNormStatistics() throws {
        let data = try writeTinyDataset(directory)
        var settings = options(out: directory.file("run").path, data: data)
        settings.augment = "off"
        let run = try TrainingRun(options: settings)
        let initial = DCGANTrainer(configuration: run.trainer.configuration, options: run.trainer.options, seed: settings.seed)
        XCTAssertEqual(try run.train(), .finished)
        func distance(_ a: Generator, _ b: Generator) -> Float {
            zip(a.parameters, b.parameters).map { pair in zip(pair.0.value.values, pair.1.value.values).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }.reduce(0, +).squareRoot()
        }
        let average = try XCTUnwrap(run.averageGenerator)
        XCTAssertLessThan(distance(average, run.trainer.generator), 0.5 * distance(initial.generator, run.trainer.generator),
                          "ramped up, the average is nearer the trained generator than its initialisation")
        let saved = try Safetensors.read(path: directory.file("run/checkpoints/latest.safetensors").path).tensors
        XCTAssertNotEqual(saved["ema.main.1.running_mean"], saved["main.1.running_mean"], "recomputed for the average, not copied from G")

        // Recomputed statistics are those of the average's own activations: in evaluation mode it
        // then draws what it draws in training mode on a large batch.
        var random = SeededRandom(seed: 9)
        let z = run.trainer.sampleNoise(batch: 256, random: &random)
        average.isTraining = false
        let evaluation = average.forward(z).values
        average.isTraining = true
        let saveStatistics = average.layers.compactMap { $0 as? BatchNorm2d }.map { ($0.runningMean.values, $0.runningVariance.values) }
        let training = average.forward(z).values
        for (norm, stats) in zip(average.layers.compactMap { $0 as? BatchNorm2d }, saveStatistics) {
            for i in 0..<norm.channels { norm.runningMean[i] = stats.0[i]; norm.runningVariance[i] = stats.1[i] }
        }
        let difference = zip(evaluation, training).map { abs($0 - $1) }.reduce(0, +) / Float(evaluation.count)
        XCTAssertLessThan(difference, 0.05)
    }

    func testSummaryNamesFlatAndCollapsedGenerators() throws {
        let data = try writeTinyDataset(directory)
        let configuration = DCGANConfiguration(imageSize: 32, channels: 1, nz: 16, ngf: 8, ndf: 8)
        let generator = DCGAN.generator(configuration, backend: .fast)  // all-zero weights: every sample the same flat image
        let flat = try TrainingSummary.measure(generator: generator, configuration: configuration, dataset: data, seed: 1).diversity
        XCTAssertEqual(flat.verdict, "flat")
        XCTAssertTrue(flat.message.hasPrefix("FROZEN GENERATOR"))

        // BatchNorm statistics of the network as it is (one training-mode batch with momentum 1),
        // so evaluation mode draws at the scale it trains at.
        func calibrate() {
            var noise = SeededRandom(seed: 8)
            let norms = generator.layers.compactMap { $0 as? BatchNorm2d }
            for norm in norms { norm.momentum = 1 }
            _ = generator.forward(Tensor(shape: [64, 16, 1, 1], values: (0..<64 * 16).map { _ in noise.nextNormal() }))
            for norm in norms { norm.momentum = 0.1 }
        }
        // One image, whatever z: the first layer ignores z and BatchNorm's shift draws one picture.
        var random = SeededRandom(seed: 4)
        Initialization.dcgan(generator.layers, random: &random)
        generator.parameters[0].value.fill(0)
        for norm in generator.layers.compactMap({ $0 as? BatchNorm2d }) { for i in 0..<norm.channels { norm.bias.value[i] = random.nextNormal() } }
        calibrate()
        let collapsed = try TrainingSummary.measure(generator: generator, configuration: configuration, dataset: data, seed: 1).diversity
        XCTAssertEqual(collapsed.verdict, "collapsed", collapsed.message)
        XCTAssertTrue(collapsed.message.hasPrefix("MODE COLLAPSE"))
    }
}
