import Foundation
import Formats

/// One training batch: `count` images, NCHW, values in [-1, 1].
public struct Batch: Sendable {
    public var images: [Float]
    public var count: Int
    /// Dataset rows (as in index.csv) of the images, in batch order.
    public var rows: [Int]
}

/// The dataset's normalisation: `plane` HWC 8-bit pixels of `channels` each → CHW values
/// x/127.5 − 1 in [-1, 1], written to `out`.
public func normalisePixels(_ source: UnsafePointer<UInt8>, plane: Int, channels: Int, into out: UnsafeMutablePointer<Float>) {
    for pixel in 0..<plane { for c in 0..<channels { out[c * plane + pixel] = Float(source[pixel * channels + c]) / 127.5 - 1 } }
}

/// The same for a whole image's pixels.
public func normalisePixels(_ pixels: [UInt8], plane: Int, channels: Int) -> [Float] {
    precondition(pixels.count == plane * channels, "one image's pixels")
    return [Float](unsafeUninitializedCapacity: pixels.count) { out, count in
        pixels.withUnsafeBufferPointer { normalisePixels($0.baseAddress!, plane: plane, channels: channels, into: out.baseAddress!) }
        count = pixels.count
    }
}

/// Shuffled, normalised batches from a prepared dataset. The order of an epoch depends only on
/// (seed, epoch), so a resumed run sees the same batches. When the dataset fits `memoryBudget` it
/// is read once and shuffled globally; otherwise each epoch visits the shards in a shuffled order,
/// one at a time, shuffling within each. Batches are assembled ahead on a background thread.
public final class BatchLoader: @unchecked Sendable {
    public let manifest: DatasetManifest
    public let directory: String
    public let batchSize: Int
    public let seed: UInt64
    /// Drop the last incomplete batch of each epoch (training wants full batches).
    public let dropLast: Bool
    /// False: dataset order (for embedding and evaluation).
    public let shuffle: Bool
    private let resident: [UInt8]?

    public init(directory: String, batchSize: Int, seed: UInt64, dropLast: Bool = true, shuffle: Bool = true,
                memoryBudget: Int = 1 << 30) throws {
        precondition(batchSize > 0, "batch size must be positive")
        manifest = try DatasetManifest.load(from: directory)
        self.directory = directory
        self.batchSize = batchSize
        self.seed = seed
        self.dropLast = dropLast
        self.shuffle = shuffle
        let elementBytes = manifest.dtype == "float32" ? 4 : 1
        let datasetBytes = manifest.count * manifest.size * manifest.size * manifest.channels * elementBytes
        if datasetBytes <= memoryBudget {
            var all: [UInt8] = []
            all.reserveCapacity(datasetBytes)
            for shard in manifest.shards { all += try BatchLoader.readShard(directory, shard, manifest).data }
            resident = all
        } else {
            resident = nil
        }
    }

    public var sampleLength: Int { manifest.size * manifest.size * manifest.channels }
    public var batchesPerEpoch: Int { dropLast ? manifest.count / batchSize : (manifest.count + batchSize - 1) / batchSize }

    /// The batches of `epoch`, from batch `start` on (to resume mid-epoch).
    public func epoch(_ epoch: Int, startingAt start: Int = 0) -> EpochBatches {
        EpochBatches(loader: self, epoch: epoch, start: start)
    }

    /// The order in which an epoch visits (shard, row-in-shard) pairs, as dataset rows.
    func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<manifest.count) }
        var random = SeededRandom(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        if resident != nil { return random.permutation(manifest.count) }
        var offsets: [Int] = [], offset = 0
        for shard in manifest.shards { offsets.append(offset); offset += shard.count }
        var rows: [Int] = []
        for shard in random.permutation(manifest.shards.count) {
            rows += random.permutation(manifest.shards[shard].count).map { offsets[shard] + $0 }
        }
        return rows
    }

    static func readShard(_ directory: String, _ shard: DatasetManifest.Shard, _ manifest: DatasetManifest) throws -> (header: Npy.Header, data: [UInt8]) {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(shard.file).path
        let (header, data) = try Npy.read(path: path)
        let expected = [shard.count, manifest.size, manifest.size, manifest.channels]
        guard header.shape == expected else {
            throw DatasetError.notADataset(path: path, reason: "shape \(header.shape), dataset.json says \(expected)")
        }
        return (header, data)
    }

    /// Writes sample `index` of `data` (HWC, uint8 or float32) into `out` as CHW in [-1, 1].
    func normalise(_ data: UnsafeRawBufferPointer, index: Int, into out: UnsafeMutablePointer<Float>) {
        let size = manifest.size, channels = manifest.channels, plane = size * size
        if manifest.dtype == "float32" {
            let source = data.bindMemory(to: Float.self).baseAddress! + index * sampleLength
            for pixel in 0..<plane { for c in 0..<channels { out[c * plane + pixel] = source[pixel * channels + c] } }
        } else {
            normalisePixels(data.bindMemory(to: UInt8.self).baseAddress! + index * sampleLength, plane: plane, channels: channels, into: out)
        }
    }

    /// Builds the batches of an epoch in order, handing each to `emit`; stops when it returns false.
    func produce(epoch: Int, start: Int, emit: (Batch) -> Bool) throws {
        let rows = order(epoch: epoch)
        let total = dropLast ? (rows.count / batchSize) * batchSize : rows.count
        var position = start * batchSize
        guard position < total else { return }
        var loadedShard = -1
        var shardData: [UInt8] = []
        var offsets: [Int] = [], offset = 0
        for shard in manifest.shards { offsets.append(offset); offset += shard.count }
        while position < total {
            let count = min(batchSize, total - position)
            var images = [Float](repeating: 0, count: count * sampleLength)
            let batchRows = Array(rows[position..<position + count])
            try images.withUnsafeMutableBufferPointer { out in
                for (slot, row) in batchRows.enumerated() {
                    let target = out.baseAddress! + slot * sampleLength
                    if let resident {
                        resident.withUnsafeBytes { normalise($0, index: row, into: target) }
                    } else {
                        let shard = offsets.lastIndex { $0 <= row }!
                        if shard != loadedShard {
                            shardData = try BatchLoader.readShard(directory, manifest.shards[shard], manifest).data
                            loadedShard = shard
                        }
                        shardData.withUnsafeBytes { normalise($0, index: row - offsets[shard], into: target) }
                    }
                }
            }
            guard emit(Batch(images: images, count: count, rows: batchRows)) else { return }
            position += count
        }
    }
}

/// The batches of one epoch, produced ahead by a background thread (at most `depth` waiting).
public final class EpochBatches: Sequence, IteratorProtocol, @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [Batch] = []
    private var finished = false
    private var cancelled = false
    private var failure: Error?
    private let depth = 3

    init(loader: BatchLoader, epoch: Int, start: Int) {
        let thread = Thread { [self] in
            do {
                try loader.produce(epoch: epoch, start: start) { batch in
                    condition.lock()
                    defer { condition.unlock() }
                    while queue.count >= depth && !cancelled { condition.wait() }
                    guard !cancelled else { return false }
                    queue.append(batch)
                    condition.broadcast()
                    return true
                }
            } catch {
                condition.lock()
                failure = error
                condition.unlock()
            }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "darkroom.loader"
        thread.start()
    }

    deinit { cancel() }

    /// Stops the producer; later calls to next() return nil.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    public func next() -> Batch? {
        try? nextBatch()
    }

    /// Like next(), but reports a shard that could not be read.
    public func nextBatch() throws -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !finished && !cancelled { condition.wait() }
        if let failure { throw failure }
        guard !queue.isEmpty else { return nil }
        let batch = queue.removeFirst()
        condition.broadcast()
        return batch
    }
}
