import Dataset
import Foundation
import Formats
import Imaging
import NN

/// Which discriminator blocks give features.
public enum FeatureLayers: String, Codable, Sendable {
    /// Every conv block, concatenated: D = 16·ndf·(2^blocks − 1).
    case all
    /// The last conv block only: D = 16·ndf·2^(blocks − 1).
    case last
}

/// Discriminator features, as in the DCGAN paper's classification experiments: D in evaluation mode
/// (BatchNorm running statistics), each conv block's activation max-pooled to 4×4, flattened, and
/// concatenated in block order (channel-major within a block).
public final class FeatureExtractor {
    public let configuration: DCGANConfiguration
    public let layers: FeatureLayers
    let discriminator: Sequential
    /// Indices of the LeakyReLU layers that end each conv block.
    let blockEnds: [Int]
    private lazy var pools: [MaxPoolToGrid] = blockEnds.map { _ in MaxPoolToGrid() }

    public init(run: String, checkpoint: String = "latest", layers: FeatureLayers = .all, backend: Backend = .fast,
                precision: Precision = .fp32) throws {
        let path = TrainedGenerator.resolve(run: run, checkpoint: checkpoint)
        guard FileManager.default.fileExists(atPath: path) else { throw GenerationError.noCheckpoint(path: path) }
        let (configuration, _, tensors, _) = try Checkpoint.configuration(at: path)
        self.configuration = configuration
        self.layers = layers
        let network = DCGAN.discriminator(configuration, backend: backend)
        network.setPrecision(precision)
        try Checkpoint.load(tensors, into: network, prefix: "discriminator.", path: path)
        network.isTraining = false
        discriminator = network
        let ends = network.layers.indices.filter { network.layers[$0] is LeakyReLU }
        blockEnds = layers == .all ? ends : [ends.last!]
    }

    /// A freshly initialised discriminator (benchmarks).
    public init(configuration: DCGANConfiguration, layers: FeatureLayers = .all, seed: UInt64 = 1, backend: Backend = .fast,
                precision: Precision = .fp32) {
        self.configuration = configuration
        self.layers = layers
        let network = DCGAN.discriminator(configuration, backend: backend)
        network.setPrecision(precision)
        var random = SeededRandom(seed: seed)
        Initialization.dcgan(network.layers, random: &random)
        network.isTraining = false
        discriminator = network
        let ends = network.layers.indices.filter { network.layers[$0] is LeakyReLU }
        blockEnds = layers == .all ? ends : [ends.last!]
    }

    /// Features per image.
    public var dimension: Int {
        FeatureExtractor.dimension(configuration, layers: layers)
    }

    public static func dimension(_ configuration: DCGANConfiguration, layers: FeatureLayers) -> Int {
        let blocks = configuration.blocks
        return layers == .all ? 16 * configuration.ndf * ((1 << blocks) - 1) : 16 * configuration.ndf << (blocks - 1)
    }

    /// images [N, C, S, S] plain, in [-1, 1] → N × dimension features, row-major.
    public func features(_ images: Tensor) -> [Float] {
        let count = images.shape[0]
        var blockFeatures: [[Float]] = []
        var value = images
        for (index, layer) in discriminator.layers.enumerated() {
            value = layer.forward(value)
            if let block = blockEnds.firstIndex(of: index) { blockFeatures.append(pools[block](value).values) }
            if index == blockEnds.last { break }
        }
        var out = [Float](repeating: 0, count: count * dimension)
        var offset = 0
        for block in blockFeatures {
            let width = block.count / count
            for n in 0..<count { out.replaceSubrange(n * dimension + offset..<n * dimension + offset + width, with: block[n * width..<(n + 1) * width]) }
            offset += width
        }
        return out
    }

}

/// Where images to embed come from.
public enum EmbeddingSource {
    /// A prepared dataset, in its row order.
    case dataset(String)
    /// Files (exact absolute path bytes) with a name for the CSV and an optional sha256, decoded as `prepare` does.
    case files([(path: [UInt8], name: String, sha256: String)], decoder: SampleDecoder)
}

public enum Embedding {
    /// Writes PREFIX.npy (N, D) float32 and PREFIX.csv (row, path, sha256) in the same order,
    /// streaming batches to disk; files that cannot be decoded are skipped with a warning.
    @discardableResult
    public static func write(_ extractor: FeatureExtractor, source: EmbeddingSource, prefix: String, batch: Int = 256,
                             warn: (String) -> Void = { _ in }, progress: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        let size = extractor.configuration.imageSize, channels = extractor.configuration.channels
        var csv = CSV.row(["row", "path", "sha256"])
        let temporary = prefix + ".npy.partial"
        _ = FileManager.default.createFile(atPath: temporary, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: temporary) else {
            throw DatasetError.writeFailed(path: temporary, reason: "cannot create")
        }
        // The header is rewritten at the end, when N is known; it has a fixed length here.
        let placeholder = Npy.header(dtype: .float32, shape: [999_999_999, extractor.dimension])
        try handle.write(contentsOf: placeholder)
        var rows = 0

        func emit(_ images: Tensor, names: [(String, String)]) throws {
            let features = extractor.features(images)
            try features.withUnsafeBytes { try Npy.writeAll($0, to: handle) }
            for (name, digest) in names {
                csv += CSV.row([String(rows), name, digest])
                rows += 1
            }
        }

        switch source {
        case .dataset(let directory):
            let loader = try BatchLoader(directory: directory, batchSize: batch, seed: 0, dropLast: false, shuffle: false)
            guard loader.manifest.size == size && loader.manifest.channels == channels else {
                throw DatasetError.notADataset(path: directory, reason: "\(loader.manifest.size) px × \(loader.manifest.channels), the model wants \(size) px × \(channels)")
            }
            let index = try DatasetIndex.read(directory)
            for item in loader.epoch(0) {
                try emit(Tensor(shape: [item.count, channels, size, size], values: item.images),
                         names: item.rows.map { index[$0].map { ($0.path, $0.sha256) } ?? (String($0), "") })
                progress(rows, loader.manifest.count)
            }
        case .files(let files, let decoder):
            for start in stride(from: 0, to: files.count, by: batch) {
                var values: [Float] = [], names: [(String, String)] = []
                for file in files[start..<min(start + batch, files.count)] {
                    do {
                        let pixels = try decoder.decode(fileBytes: file.path)
                        values += normalisePixels(pixels, plane: size * size, channels: channels)
                        names.append((file.name, file.sha256))
                    } catch {
                        warn("skipped \(file.name): \(error)")
                    }
                }
                if !names.isEmpty { try emit(Tensor(shape: [names.count, channels, size, size], values: values), names: names) }
                progress(min(start + batch, files.count), files.count)
            }
        }
        let header = Npy.header(dtype: .float32, shape: [rows, extractor.dimension])
        precondition(header.count == placeholder.count, "npy header length changed")
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: header)
        try handle.synchronize()
        try handle.close()
        try AtomicFile.write(Array(csv.utf8), to: prefix + ".csv")
        guard rename(temporary, prefix + ".npy") == 0 else { throw DatasetError.writeFailed(path: prefix + ".npy", reason: String(cString: strerror(errno))) }
        return rows
    }

}
