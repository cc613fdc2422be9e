import Catalog
import Foundation
import Formats
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// How JPEGs are decoded before the resize. `fast`: libjpeg's DCT scaling (1/2, 1/4, 1/8) to no
/// less than the target size, then the resize: Pillow's `Image.draft` path. `full`: every pixel,
/// then the resize: Pillow's full decode. PNGs are always decoded in full.
public enum DecodeMode: String, Codable, CaseIterable, Sendable {
    case fast, full
}

/// The `prepare` options. Recorded in dataset.json.
public struct PrepareOptions: Codable, Equatable, Sendable {
    public var size: Int
    public var channels: Int
    public var fit: FitMode
    public var dropNearDuplicates: Bool
    public var limit: Int?
    /// "uint8" (raw pixels; x/127.5 − 1 on load) or "float32" (already in [-1, 1]).
    public var dtype: String
    public var jobs: Int
    /// RGB under transparent pixels and around padded images.
    public var background: [UInt8]
    /// Upper bound on one shard's data, so memory stays bounded by one shard.
    public var shardBytes: Int
    /// Images whose shorter side is under this many pixels are skipped (0: none). By default half
    /// the target size: nothing is blown up more than 2×, where it would be all blur.
    public var minSize: Int?
    /// "fast" or "full"; nil in datasets prepared before the choice existed, which were fast.
    public var decode: String?
    public var decodeMode: DecodeMode { decode.flatMap(DecodeMode.init(rawValue:)) ?? .fast }

    public init(size: Int, channels: Int, fit: FitMode = .crop, dropNearDuplicates: Bool = false, limit: Int? = nil,
                dtype: String = "uint8", jobs: Int = ProcessInfo.processInfo.activeProcessorCount,
                background: [UInt8] = [255, 255, 255], shardBytes: Int = 64 << 20, minSize: Int? = nil, decode: DecodeMode = .fast) {
        self.size = size
        self.channels = channels
        self.fit = fit
        self.dropNearDuplicates = dropNearDuplicates
        self.limit = limit
        self.dtype = dtype
        self.jobs = max(1, jobs)
        self.background = background
        self.shardBytes = shardBytes
        self.minSize = minSize ?? PrepareOptions.defaultMinSize(size: size)
        self.decode = decode.rawValue
    }

    public static func defaultMinSize(size: Int) -> Int { size / 2 }

    enum CodingKeys: String, CodingKey {
        case size, channels, fit, limit, dtype, jobs, background
        case dropNearDuplicates = "drop_near_duplicates", shardBytes = "shard_bytes", minSize = "min_size", decode
    }

    var imageBytes: Int { size * size * channels * (dtype == "float32" ? 4 : 1) }
    var imagesPerShard: Int { max(1, shardBytes / imageBytes) }
}

/// Decodes, fits and normalises one image file exactly as `prepare` does; also used by `embed`
/// for images that were never prepared.
public struct SampleDecoder: Sendable {
    public var size: Int
    public var channels: Int
    public var fit: FitMode
    public var background: (UInt8, UInt8, UInt8)
    public var mode: DecodeMode

    public init(size: Int, channels: Int, fit: FitMode, background: [UInt8], mode: DecodeMode = .fast) {
        self.size = size
        self.channels = channels
        self.fit = fit
        self.background = (background[0], background[1], background[2])
        self.mode = mode
    }

    /// HWC uint8 pixels of a `size`×`size`×`channels` sample.
    public func decode(_ bytes: [UInt8]) throws -> [UInt8] {
        // Fast: DCT scaling to no less than the target keeps large JPEGs cheap; the antialiased
        // resize that follows does the rest.
        let image = try ImageCodec.decode(bytes, options: DecodeOptions(jpegMinimumSide: mode == .fast ? size : 0))
        return image.converted(toChannels: channels, background: background)
            .fitted(size: size, mode: fit, background: background).pixels
    }

    public func decode(file path: String) throws -> [UInt8] {
        try decode(fileBytes: Array(path.utf8))
    }

    /// A file named by its exact path bytes (names need not be UTF-8).
    public func decode(fileBytes path: [UInt8]) throws -> [UInt8] {
        try decode(try FileInspector.readAll(path.map { CChar(bitPattern: $0) } + [0], expectedSize: 0, limit: 1 << 30))
    }
}

/// Turns a catalogue's usable images into `DIR/dataset.json`, `DIR/index.csv` and
/// `DIR/shard-NNNNN.npy`. Everything is written into a sibling folder first and renamed into
/// place at the end, so DIR is either the old dataset or the complete new one.
public final class DatasetPreparer {
    public let database: CatalogDatabase
    public let options: PrepareOptions

    public init(database: CatalogDatabase, options: PrepareOptions) {
        self.database = database
        self.options = options
    }

    /// `warn` hears about each image skipped; `progress` gets (done, total).
    @discardableResult
    public func prepare(into directory: String, warn: (String) -> Void = { _ in },
                        progress: (Int, Int) -> Void = { _, _ in }) throws -> DatasetManifest {
        // Images are read from the catalogue a page at a time, and the index is written as rows
        // are made: memory holds one page and one shard, however large the catalogue.
        let kept = options.dropNearDuplicates ? try database.largestOfEachNearGroup() : nil
        let available = try kept.map { try $0.count + database.usableImageCount(outsideNearGroupsOnly: true) } ?? database.usableImageCount()
        let total = min(available, options.limit ?? .max)
        guard total > 0 else { throw DatasetError.noImages(catalog: database.path ?? ":memory:") }

        let target = URL(fileURLWithPath: directory).standardizedFileURL
        try checkReplaceable(target)
        removeLeftoversOfDeadRuns(target)
        let staging = URL(fileURLWithPath: target.path + ".partial-\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)

        let decoder = SampleDecoder(size: options.size, channels: options.channels, fit: options.fit, background: options.background,
                                    mode: options.decodeMode)
        let float = options.dtype == "float32"
        let sampleLength = options.size * options.size * options.channels
        var shards: [DatasetManifest.Shard] = []
        var skipped: [DatasetManifest.Skipped] = []
        let indexPath = staging.appendingPathComponent("index.csv").path
        guard FileManager.default.createFile(atPath: indexPath, contents: nil), let index = FileHandle(forWritingAtPath: indexPath) else {
            throw DatasetError.writeFailed(path: indexPath, reason: String(cString: strerror(errno)))
        }
        defer { try? index.close() }
        try index.write(contentsOf: Data(CSV.row(["row", "shard", "path", "sha256"]).utf8))
        var shardPixels: [UInt8] = []
        shardPixels.reserveCapacity(min(options.imagesPerShard, total) * sampleLength)
        var shardCount = 0, row = 0

        func writeShard() throws {
            guard shardCount > 0 else { return }
            let name = String(format: "shard-%05d.npy", shards.count)
            let path = staging.appendingPathComponent(name).path
            let shape = [shardCount, options.size, options.size, options.channels]
            try writeFile(path) { handle in
                if float {
                    let values = shardPixels.map { Float($0) / 127.5 - 1 }
                    try values.withUnsafeBufferPointer { try Npy.write($0, dtype: .float32, shape: shape, to: handle) }
                } else {
                    try shardPixels.withUnsafeBufferPointer { try Npy.write($0, dtype: .uint8, shape: shape, to: handle) }
                }
            }
            shards.append(.init(file: name, count: shardCount))
            shardPixels.removeAll(keepingCapacity: true)
            shardCount = 0
        }

        let batchSize = 256
        var taken = 0, lastId: Int64 = 0, tooSmall = 0
        let minSize = options.minSize ?? 0
        while taken < total {
            let page = try database.usableImages(after: lastId, limit: batchSize)
            guard let last = page.last else { break }
            lastId = last.id
            let batch = Array(page.filter { item in item.nearGroup == nil || kept?.contains(item.id) ?? true }.prefix(total - taken))
            taken += batch.count
            // Too small to use: known from the catalogue, never decoded.
            let small = batch.map { min($0.width, $0.height) < minSize }
            let results = decodeInParallel(zip(batch, small).filter { !$1 }.map(\.0.absolutePathBytes), decoder: decoder)
            var decoded = results.makeIterator()
            var statusUpdates: [(Int64, ImageStatus, String)] = []
            var indexRows = ""
            for (item, isSmall) in zip(batch, small) {
                if isSmall {
                    skipped.append(.init(path: item.path, reason: "smaller than --min-size \(minSize) (\(item.width)x\(item.height))"))
                    tooSmall += 1
                    continue
                }
                switch decoded.next()! {
                case .success(let pixels):
                    shardPixels.append(contentsOf: pixels)
                    indexRows += CSV.row([String(row), shards.count.description, item.path, item.sha256])
                    row += 1
                    shardCount += 1
                    if shardCount == options.imagesPerShard { try writeShard() }
                case .failure(let error):
                    let reason = "\(error)"
                    warn("skipped \(item.absolutePath): \(reason)")
                    skipped.append(.init(path: item.path, reason: reason))
                    if let decodeError = error as? ImageDecodeError {
                        statusUpdates.append((item.id, ImageStatus(decodeError), decodeError.description))
                    }
                }
            }
            try index.write(contentsOf: Data(indexRows.utf8))
            if !statusUpdates.isEmpty { try database.updateStatuses(statusUpdates) }
            progress(taken, total)
        }
        try writeShard()
        if tooSmall > 0 { warn("skipped \(tooSmall) images smaller than --min-size \(minSize) on their shorter side (listed in dataset.json)") }
        guard row > 0 else {
            if tooSmall > 0 { throw DatasetError.allTooSmall(catalog: database.path ?? ":memory:", count: tooSmall, minSize: minSize) }
            throw DatasetError.noImages(catalog: database.path ?? ":memory:")
        }
        try index.synchronize()

        let manifest = DatasetManifest(
            size: options.size, channels: options.channels, count: row, dtype: options.dtype,
            normalization: float ? "stored as x/127.5 - 1" : "x/127.5 - 1", sourceCatalog: database.path ?? ":memory:",
            options: options, shards: shards, skipped: skipped.count, skippedFiles: skipped, createdAt: Date(),
            darkroomVersion: darkroomVersion)
        // dataset.json last: its presence marks a complete dataset.
        try writeFile(staging.appendingPathComponent(DatasetManifest.fileName).path) { try $0.write(contentsOf: try manifest.encoded()) }
        syncDirectory(staging.path)
        try replace(target, with: staging)
        return manifest
    }


    private func decodeInParallel(_ paths: [[UInt8]], decoder: SampleDecoder) -> [Result<[UInt8], Error>] {
        var results = [Result<[UInt8], Error>](repeating: .success([]), count: paths.count)
        let workers = min(options.jobs, paths.count)
        results.withUnsafeMutableBufferPointer { output in
            nonisolated(unsafe) let output = output
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: paths.count, by: workers) {
                    output[index] = Result { try decoder.decode(fileBytes: paths[index]) }
                }
            }
        }
        return results
    }

    /// DIR may be replaced when it does not exist, is empty, or is a darkroom dataset.
    private func checkReplaceable(_ target: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory) else { return }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: target.path)) ?? []
        guard isDirectory.boolValue, contents.isEmpty || contents.contains(DatasetManifest.fileName) else {
            throw DatasetError.refuseToReplace(path: target.path)
        }
    }

    /// DIR.partial-PID and DIR.old-PID folders of `prepare` runs that were killed (their process is
    /// gone): never a dataset anyone reads, so removed rather than left to pile up.
    private func removeLeftoversOfDeadRuns(_ target: URL) {
        let parent = target.deletingLastPathComponent(), name = target.lastPathComponent
        for sibling in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] {
            for marker in [".partial-", ".old-"] where sibling.hasPrefix(name + marker) {
                guard let pid = Int32(sibling.dropFirst(name.count + marker.count)), pid != getpid(),
                      kill(pid, 0) != 0 && errno == ESRCH else { continue }
                try? FileManager.default.removeItem(at: parent.appendingPathComponent(sibling))
            }
        }
    }

    /// DIR becomes the staging folder in one atomic exchange where the filesystem allows it;
    /// elsewhere by two renames, the old dataset kept beside DIR until the new one is in place.
    private func replace(_ target: URL, with staging: URL) throws {
        let parent = target.deletingLastPathComponent().path
        let exists = FileManager.default.fileExists(atPath: target.path)
        if exists && AtomicDirectory.exchange(staging.path, target.path) {
            syncDirectory(parent)
            try? FileManager.default.removeItem(at: staging)  // the old dataset, now under the staging name
            return
        }
        let old = URL(fileURLWithPath: target.path + ".old-\(getpid())")
        if exists { try FileManager.default.moveItem(at: target, to: old) }
        do {
            try FileManager.default.moveItem(at: staging, to: target)
        } catch {
            if exists { try? FileManager.default.moveItem(at: old, to: target) }
            throw DatasetError.writeFailed(path: target.path, reason: "\(error)")
        }
        syncDirectory(parent)
        if exists { try? FileManager.default.removeItem(at: old) }
    }

    private func writeFile(_ path: String, _ body: (FileHandle) throws -> Void) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw DatasetError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        defer { try? handle.close() }
        try body(handle)
        try handle.synchronize()
    }
}

/// fsync a directory so the renames in it survive a power cut.
func syncDirectory(_ path: String) {
    let descriptor = open(path, O_RDONLY | O_DIRECTORY)
    guard descriptor >= 0 else { return }
    fsync(descriptor)
    close(descriptor)
}
