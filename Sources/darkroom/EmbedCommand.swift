import ArgumentParser
import Catalog
import Dataset
import Foundation
import GAN
import Imaging

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Extract discriminator features (PREFIX.npy + PREFIX.csv) for a prepared dataset, a catalogue's usable images, or a folder.")

    @Option(help: "The training run folder.")
    var model: String
    @Option(help: "latest, best (lowest fd in training), epoch-N, kimg-N, or a .safetensors path.")
    var checkpoint = "latest"
    @Option(help: "A prepared dataset.")
    var data: String?
    @Option(help: "A catalogue: its usable images.")
    var db: String?
    @Option(help: "A folder of PNG/JPEG images.")
    var images: String?
    @Option(help: "Output prefix: PREFIX.npy and PREFIX.csv.")
    var out: String
    @Option(help: "all (every conv block) or last.")
    var layers = "all"
    @Option var batch = 256
    @OptionGroup var precision: PrecisionOption
    @Option(help: "JPEG decoding for --db and --images: fast or full (default: as the model's dataset was prepared).")
    var decode: String?

    func validate() throws {
        guard [data, db, images].compactMap({ $0 }).count == 1 else { throw ValidationError("give exactly one of --data, --db, --images") }
        guard FeatureLayers(rawValue: layers) != nil else { throw ValidationError("--layers must be all or last") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let decode, DecodeMode(rawValue: decode) == nil { throw ValidationError("--decode must be fast or full") }
    }

    func run() throws {
        let extractor = try FeatureExtractor(run: model, checkpoint: checkpoint, layers: FeatureLayers(rawValue: layers)!,
                                             precision: precision.resolved)
        let source: EmbeddingSource
        if let data {
            source = .dataset(data)
        } else {
            let decoder = try sampleDecoder(extractor)
            if let db {
                let usable = try CatalogDatabase(path: db).usableImages()
                source = .files(usable.map { ($0.absolutePathBytes, $0.path, $0.sha256) }, decoder: decoder)
            } else {
                let root = URL(fileURLWithPath: images!).standardizedFileURL.path
                var walker = try FileWalker(root: root, followSymlinks: false)
                var files: [(path: [UInt8], name: String, sha256: String)] = []
                while let file = walker.next() {
                    guard file.statError == nil else { continue }
                    let lower = file.relativePath.lowercased()
                    if lower.hasSuffix(".png") || lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") {
                        files.append((file.absolutePath.dropLast().map { UInt8(bitPattern: $0) }, file.relativePath, ""))
                    }
                }
                source = .files(files, decoder: decoder)
            }
        }
        let rows = try Embedding.write(extractor, source: source, prefix: out, batch: batch,
                                       warn: { Console.note("warning: \($0)") }, progress: { done, total in Console.progress("embed: \(done)/\(total)") })
        Console.endProgress()
        Console.note("wrote \(rows) × \(extractor.dimension) features to \(out).npy (rows in \(out).csv)")
    }

    /// Decode as the model's training data was prepared (fit, background and decode mode from its
    /// dataset.json when known; `--decode` overrides the mode).
    private func sampleDecoder(_ extractor: FeatureExtractor) throws -> SampleDecoder {
        var fit = FitMode.crop, background: [UInt8] = [255, 255, 255], mode = DecodeMode.fast
        if let dataset = try? TrainedGenerator.trainingData(run: model), let manifest = try? DatasetManifest.load(from: dataset) {
            fit = manifest.options.fit
            background = manifest.options.background
            mode = manifest.options.decodeMode
        }
        return SampleDecoder(size: extractor.configuration.imageSize, channels: extractor.configuration.channels, fit: fit, background: background,
                             mode: decode.flatMap(DecodeMode.init(rawValue:)) ?? mode)
    }
}

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Train a multinomial logistic regression on features for the labelled rows; report train/test accuracy.")

    @Option(help: "The features' prefix (PREFIX.npy, PREFIX.csv from embed).")
    var features: String
    @Option(help: "A CSV with path,label columns (paths as in PREFIX.csv).")
    var labels: String
    @Option var testFraction = 0.2
    @Option var seed: UInt64 = 0
    @Option(help: "L2 penalty.")
    var l2: Float = 1e-4
    @Option var iterations = 300
    @Flag var json = false
    @Option(help: "Also write the result as JSON to this file.")
    var out: String?

    func validate() throws {
        guard testFraction > 0 && testFraction < 1 else { throw ValidationError("--test-fraction must be in (0, 1)") }
        guard iterations >= 1, l2 >= 0 else { throw ValidationError("--iterations must be positive and --l2 non-negative") }
    }

    func run() throws {
        let result = try Probe.run(features: features, labels: labels, testFraction: testFraction, seed: seed, l2: l2, iterations: iterations)
        if let out { try Data(try Console.json(result).utf8).write(to: URL(fileURLWithPath: out), options: .atomic) }
        if json {
            print(try Console.json(result))
        } else {
            print(String(format: "train accuracy %.4f (%d rows), test accuracy %.4f (%d rows), %d classes, %d features",
                         result.trainAccuracy, result.trainCount, result.testAccuracy, result.testCount, result.classes.count, result.features))
        }
    }
}
