import Foundation

/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
/// tensor name to {dtype, shape, data_offsets} (plus an optional "__metadata__" of strings), then
/// the raw little-endian data. https://github.com/huggingface/safetensors
public enum Safetensors {
    public enum DType: String, Codable, Sendable {
        case float32 = "F32"
        case int64 = "I64"

        var byteSize: Int { self == .float32 ? 4 : 8 }
    }

    public struct Entry: Equatable, Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(floats: [Float], shape: [Int]) {
            precondition(floats.count == shape.reduce(1, *), "\(floats.count) values for shape \(shape)")
            dtype = .float32
            self.shape = shape
            bytes = floats.withUnsafeBytes { Array($0) }
        }

        public init(int64 value: Int64) {
            dtype = .int64
            shape = []
            bytes = withUnsafeBytes(of: value.littleEndian) { Array($0) }
        }

        public var floats: [Float] {
            precondition(dtype == .float32, "not a float32 tensor")
            return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }

        public var int64: Int64 {
            precondition(dtype == .int64 && bytes.count == 8, "not an int64 scalar")
            return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        }
    }

    public enum SafetensorsError: Error, CustomStringConvertible {
        case malformed(path: String, reason: String)
        case writeFailed(path: String, reason: String)

        public var description: String {
            switch self {
            case .malformed(let path, let reason): return "\(path): not a readable safetensors file: \(reason)"
            case .writeFailed(let path, let reason): return "\(path): cannot write: \(reason)"
            }
        }
    }

    /// The file's bytes: header padded with spaces to 8-byte alignment, tensors in name order.
    public static func encode(_ tensors: [String: Entry], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let entry = tensors[name]!
            header[name] = ["dtype": entry.dtype.rawValue, "shape": entry.shape, "data_offsets": [offset, offset + entry.bytes.count]] as [String: Any]
            offset += entry.bytes.count
        }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
        bytes.reserveCapacity(bytes.count + offset)
        for name in names { bytes += tensors[name]!.bytes }
        return bytes
    }

    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> (tensors: [String: Entry], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw SafetensorsError.malformed(path: path, reason: "shorter than its 8-byte header length") }
        let length = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length > 0, length <= bytes.count - 8 else { throw SafetensorsError.malformed(path: path, reason: "header length \(length) exceeds the file") }
        guard let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<8 + length])) as? [String: Any] else {
            throw SafetensorsError.malformed(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + length
        var tensors: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String, let dtype = DType(rawValue: dtypeName),
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SafetensorsError.malformed(path: path, reason: "bad or unsupported entry \(name)")
            }
            let begin = dataStart + offsets[0], end = dataStart + offsets[1]
            guard begin <= end, end <= bytes.count, end - begin == shape.reduce(1, *) * dtype.byteSize else {
                throw SafetensorsError.malformed(path: path, reason: "\(name): offsets \(offsets) do not fit shape \(shape)")
            }
            tensors[name] = Entry(dtype: dtype, shape: shape, bytes: Array(bytes[begin..<end]))
        }
        return (tensors, metadata)
    }

    public static func read(path: String) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError.malformed(path: path, reason: "cannot read file")
        }
        return try decode(Array(data), path: path)
    }

    /// Writes atomically: a temporary file beside the target, fsync'ed, then renamed over it.
    public static func write(_ tensors: [String: Entry], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }
}

extension Safetensors.Entry {
    init(dtype: Safetensors.DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }
}

/// Write-to-temporary, fsync, rename: readers see the old file or the whole new one, never a part.
public enum AtomicFile {
    /// The temporary file's name beside NAME: .NAME.tmp-PID.
    static func temporaryName(for name: String) -> String { ".\(name).tmp-\(getpid())" }

    /// NAME, when `name` is a temporary file of `write` (a process killed before renaming it leaves one).
    public static func targetName(ofTemporary name: String) -> String? {
        guard name.hasPrefix("."), let range = name.range(of: ".tmp-", options: .backwards),
              Int32(name[range.upperBound...]) != nil else { return nil }
        return String(name[name.index(after: name.startIndex)..<range.lowerBound])
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(temporaryName(for: url.lastPathComponent))
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Safetensors.SafetensorsError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                unlink(temporary.path)
                throw Safetensors.SafetensorsError.writeFailed(path: path, reason: reason)
            }
            offset += written
        }
        fsync(descriptor)
        close(descriptor)
        guard rename(temporary.path, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw Safetensors.SafetensorsError.writeFailed(path: path, reason: reason)
        }
        let directory = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY)
        if directory >= 0 { fsync(directory); close(directory) }
    }
}

/// Atomic replacement of a directory. renameat2(RENAME_EXCHANGE) swaps two names in one step
/// (looked up at run time: Swift's Glibc module does not declare it), so a reader, or a crash,
/// sees the old directory or the new one, never neither.
public enum AtomicDirectory {
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameat2: RenameAt2? = dlsym(nil, "renameat2").map { unsafeBitCast($0, to: RenameAt2.self) }
    private static let exchangeFlag: UInt32 = 2  // RENAME_EXCHANGE

    /// Swaps the names of two existing paths; false where the kernel or filesystem cannot.
    public static func exchange(_ first: String, _ second: String) -> Bool {
        guard let renameat2 else { return false }
        return renameat2(AT_FDCWD, first, AT_FDCWD, second, exchangeFlag) == 0
    }
}
