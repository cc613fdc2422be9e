import Crypto
import Dataset
import Foundation
import Formats
import Imaging
import NN

public enum GenerationError: Error, CustomStringConvertible {
    case outputNotEmpty(path: String)
    case noCheckpoint(path: String)
    case badLatents(path: String, reason: String)

    public var description: String {
        switch self {
        case .outputNotEmpty(let path): return "\(path): output folder is not empty (pass --overwrite to write into it)"
        case .noCheckpoint(let path): return "\(path): no such checkpoint (train first, or name one of RUN/checkpoints)"
        case .badLatents(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// A trained generator loaded from a run's checkpoint, in evaluation mode.
public final class TrainedGenerator {
    public let configuration: DCGANConfiguration
    public let network: Sequential
    /// sha256 of the checkpoint file, recorded with every generated image.
    public let checkpointDigest: String
    public let checkpointPath: String
    public let usesAverage: Bool

    /// `checkpoint`: "latest", "epoch-N", or a path. `average`: use the EMA weights when present.
    public init(run: String, checkpoint: String = "latest", average: Bool = true, backend: Backend = .fast) throws {
        let path = TrainedGenerator.resolve(run: run, checkpoint: checkpoint)
        guard FileManager.default.fileExists(atPath: path) else { throw GenerationError.noCheckpoint(path: path) }
        let (configuration, _, tensors, _) = try Checkpoint.configuration(at: path)
        self.configuration = configuration
        network = DCGAN.generator(configuration, backend: backend)
        usesAverage = average && tensors.keys.contains { $0.hasPrefix("ema.") }
        try Checkpoint.load(tensors, into: network, prefix: usesAverage ? "ema." : "", path: path)
        network.isTraining = false
        checkpointPath = path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        checkpointDigest = hexString(SHA256.hash(data: bytes))
    }

    static func resolve(run: String, checkpoint: String) -> String {
        if checkpoint.hasSuffix(".safetensors") { return checkpoint }
        if let epoch = Int(checkpoint.replacingOccurrences(of: "epoch-", with: "")), checkpoint.hasPrefix("epoch-") {
            return "\(run)/checkpoints/" + String(format: "epoch-%03d.safetensors", epoch)
        }
        if let kimg = Double(checkpoint.replacingOccurrences(of: "kimg-", with: "")), checkpoint.hasPrefix("kimg-") {
            return "\(run)/checkpoints/" + String(format: "kimg-%06.1f.safetensors", kimg)
        }
        return "\(run)/checkpoints/\(checkpoint).safetensors"
    }

    /// The latent of image `index` of a generation seeded with `seed`: each image has its own
    /// stream, so any one can be regenerated alone.
    public func latent(seed: UInt64, index: Int) -> [Float] {
        var random = SeededRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        return (0..<configuration.nz).map { _ in random.nextNormal() }
    }

    /// Images [N, C, S, S] in [-1, 1] from latents (N·nz values).
    public func images(latents: [Float]) -> Tensor {
        let count = latents.count / configuration.nz
        return network.forward(Tensor(shape: [count, configuration.nz, 1, 1], values: latents)).plain()
    }

    /// Image `index` of a [N, C, S, S] batch as 8-bit pixels.
    public func pixelImage(_ images: Tensor, index: Int) -> PixelImage {
        let channels = configuration.channels, size = configuration.imageSize, plane = size * size
        var image = PixelImage(width: size, height: size, channels: channels)
        for c in 0..<channels {
            for pixel in 0..<plane {
                image.pixels[pixel * channels + c] = SampleGrid.toByte(images[(index * channels + c) * plane + pixel])
            }
        }
        return image
    }
}

/// What `generate` writes.
public struct GenerationOptions: Sendable {
    public var count: Int
    public var seed: UInt64 = 0
    public var batch = 256
    public var format = "png"
    public var quality = 95
    public var overwrite = false
    /// With `augment`: a prepared dataset whose images are written too, and synthetic images per real one.
    public var augment: String?
    public var ratio: Double = 1

    public init(count: Int) { self.count = count }
}

/// One line of DIR/metadata.jsonl (Hugging Face imagefolder reads `file_name`).
public struct GeneratedImage: Codable, Equatable, Sendable {
    public var fileName: String
    public var source: String
    public var index: Int
    public var seed: UInt64?
    public var checkpoint: String?
    public var path: String?

    enum CodingKeys: String, CodingKey { case fileName = "file_name", source, index, seed, checkpoint, path }
}

public enum Generation {
    /// Writes DIR/images/NNNNNN.png (or .jpg), DIR/latents.npy (N, nz) float32 and DIR/metadata.jsonl.
    /// Files are written under DIR only, each atomically; metadata.jsonl last, so its presence marks
    /// a finished output. A DIR holding only an unfinished output of this function (its own files,
    /// no metadata.jsonl: an interrupted run) is taken over as if `overwrite` were given.
    @discardableResult
    public static func write(_ generator: TrainedGenerator, options: GenerationOptions, to directory: String,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> [GeneratedImage] {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        let unfinished = !existing.isEmpty && isUnfinishedOutput(root)
        guard existing.isEmpty || options.overwrite || unfinished else { throw GenerationError.outputNotEmpty(path: root.path) }
        let imagesDirectory = root.appendingPathComponent("images")
        if options.overwrite || unfinished { try removePreviousOutputs(root) }
        try FileManager.default.createDirectory(at: imagesDirectory, withIntermediateDirectories: true)
        let fileExtension = options.format == "jpg" ? "jpg" : "png"
        var rows: [GeneratedImage] = []

        func encode(_ image: PixelImage) throws -> [UInt8] {
            fileExtension == "jpg" ? try JPEG.encode(image, quality: options.quality) : try PNG.encode(image)
        }

        var syntheticCount = options.count
        if let augment = options.augment {
            let loader = try BatchLoader(directory: augment, batchSize: 256, seed: 0, dropLast: false, shuffle: false)
            let index = try DatasetIndex.read(augment)
            syntheticCount = Int((Double(loader.manifest.count) * options.ratio).rounded())
            let size = loader.manifest.size, channels = loader.manifest.channels, plane = size * size
            for batch in loader.epoch(0) {
                for (slot, row) in batch.rows.enumerated() {
                    var image = PixelImage(width: size, height: size, channels: channels)
                    for c in 0..<channels {
                        for pixel in 0..<plane { image.pixels[pixel * channels + c] = SampleGrid.toByte(batch.images[slot * channels * plane + c * plane + pixel]) }
                    }
                    let name = String(format: "images/real-%06d.%@", row, fileExtension)
                    try AtomicFile.write(try encode(image), to: root.appendingPathComponent(name).path)
                    rows.append(GeneratedImage(fileName: name, source: "real", index: row, seed: nil, checkpoint: nil, path: index[row]?.path))
                }
            }
        }

        var latents: [Float] = []
        latents.reserveCapacity(syntheticCount * generator.configuration.nz)
        for start in stride(from: 0, to: syntheticCount, by: options.batch) {
            let count = min(options.batch, syntheticCount - start)
            var batchLatents: [Float] = []
            for index in start..<start + count { batchLatents += generator.latent(seed: options.seed, index: index) }
            let images = generator.images(latents: batchLatents)
            for slot in 0..<count {
                let index = start + slot
                let name = String(format: "images/%06d.%@", index, fileExtension)
                try AtomicFile.write(try encode(generator.pixelImage(images, index: slot)), to: root.appendingPathComponent(name).path)
                rows.append(GeneratedImage(fileName: name, source: "synthetic", index: index, seed: options.seed,
                                           checkpoint: generator.checkpointDigest, path: nil))
            }
            latents += batchLatents
            progress(start + count, syntheticCount)
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var jsonl: [UInt8] = []
        for row in rows { jsonl += Array(try encoder.encode(row)) + [UInt8(ascii: "\n")] }
        let header = Npy.header(dtype: .float32, shape: [syntheticCount, generator.configuration.nz])
        try AtomicFile.write(header + latents.withUnsafeBytes { Array($0) }, to: root.appendingPathComponent("latents.npy").path)
        try AtomicFile.write(jsonl, to: root.appendingPathComponent("metadata.jsonl").path)
        return rows
    }


    /// Deletes what an earlier `write` left in DIR (its own file names only), so images and
    /// metadata always agree; anything else in DIR is kept.
    static func removePreviousOutputs(_ root: URL) throws {
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? [] where isOwnTopLevelFile(name) {
            try fileManager.removeItem(at: root.appendingPathComponent(name))
        }
        let images = root.appendingPathComponent("images")
        for name in (try? fileManager.contentsOfDirectory(atPath: images.path)) ?? [] where isOwnImageFile(name) {
            try fileManager.removeItem(at: images.appendingPathComponent(name))
        }
    }

    /// Names `write` gives, or gave a temporary file it was killed before renaming.
    private static func finalName(_ name: String) -> String { AtomicFile.targetName(ofTemporary: name) ?? name }

    private static func isOwnTopLevelFile(_ name: String) -> Bool { ["metadata.jsonl", "latents.npy"].contains(finalName(name)) }

    private static func isOwnImageFile(_ name: String) -> Bool {
        let name = finalName(name)
        let stem = name.hasPrefix("real-") ? String(name.dropFirst(5)) : name
        let parts = stem.split(separator: ".")
        return parts.count == 2 && parts[0].count == 6 && parts[0].allSatisfy(\.isNumber) && ["png", "jpg"].contains(String(parts[1]))
    }

    /// DIR holds nothing but files `write` makes, and no metadata.jsonl: a run that did not finish.
    static func isUnfinishedOutput(_ root: URL) -> Bool {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: root.path), !names.contains("metadata.jsonl"),
              names.allSatisfy({ $0 == "images" || isOwnTopLevelFile($0) }) else { return false }
        let images = (try? fileManager.contentsOfDirectory(atPath: root.appendingPathComponent("images").path)) ?? []
        return images.allSatisfy(isOwnImageFile)
    }

    /// A grid of `walks` rows, each interpolating linearly between two random latents in `steps` steps
    /// (the DCGAN paper's latent-space walks).
    public static func interpolationGrid(_ generator: TrainedGenerator, walks: Int, steps: Int = 10, seed: UInt64) -> PixelImage {
        var latents: [Float] = []
        for walk in 0..<walks {
            let start = generator.latent(seed: seed, index: 2 * walk), end = generator.latent(seed: seed, index: 2 * walk + 1)
            for step in 0..<steps {
                let t = Float(step) / Float(max(steps - 1, 1))
                latents += zip(start, end).map { (1 - t) * $0 + t * $1 }
            }
        }
        return SampleGrid.image(generator.images(latents: latents), columns: steps)
    }

    /// Reads a latents.npy written by `write`.
    public static func readLatents(_ path: String, nz: Int) throws -> [Float] {
        let (header, data) = try Npy.read(path: path)
        guard header.dtype == .float32, header.shape.count == 2, header.shape[1] == nz else {
            throw GenerationError.badLatents(path: path, reason: "expected float32 (N, \(nz)), found \(header.dtype) \(header.shape)")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
