import Foundation

/// NumPy's .npy format, version 1.0: magic, a little-endian u16 header length, a Python-literal
/// dict header padded with spaces to a multiple of 64 bytes and ended by '\n', then the raw
/// C-order little-endian data. https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
public enum Npy {
    public enum DType: String, Codable, Sendable {
        case uint8 = "|u1"
        case float32 = "<f4"

        public var byteSize: Int { self == .uint8 ? 1 : 4 }
    }

    public enum NpyError: Error, CustomStringConvertible {
        case malformed(path: String, reason: String)
        public var description: String {
            switch self {
            case .malformed(let path, let reason): return "\(path): not a readable .npy file: \(reason)"
            }
        }
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The bytes before the data.
    public static func header(dtype: DType, shape: [Int]) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = magic.count + 2 + 2 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = UInt16(dict.utf8.count)
        return magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dict.utf8)
    }

    /// Writes an array in one go (header + data).
    public static func write<T>(_ values: UnsafeBufferPointer<T>, dtype: DType, shape: [Int], to handle: FileHandle) throws {
        precondition(MemoryLayout<T>.size == dtype.byteSize, "element size does not match \(dtype)")
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        try header(dtype: dtype, shape: shape).withUnsafeBytes { try writeAll($0, to: handle) }
        try writeAll(UnsafeRawBufferPointer(values), to: handle)
    }

    /// write(2) in a loop: FileHandle.write(contentsOf:) would first copy a whole shard into a Data.
    public static func writeAll(_ bytes: UnsafeRawBufferPointer, to handle: FileHandle) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(handle.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(errno))])
            }
            offset += written
        }
    }

    /// What a header says, and where the data starts.
    public struct Header: Equatable, Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var dataOffset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public static func readHeader(_ bytes: [UInt8], path: String) throws -> Header {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw NpyError.malformed(path: path, reason: "bad magic") }
        let major = bytes[6]
        let lengthBytes = major == 1 ? 2 : 4
        guard major >= 1 && major <= 3, bytes.count >= 8 + lengthBytes else { throw NpyError.malformed(path: path, reason: "unsupported version \(major)") }
        var length = 0
        for index in 0..<lengthBytes { length |= Int(bytes[8 + index]) << (8 * index) }
        let start = 8 + lengthBytes
        guard bytes.count >= start + length else { throw NpyError.malformed(path: path, reason: "header runs past the end") }
        let text = String(decoding: bytes[start..<start + length], as: UTF8.self)
        guard let descr = capture(text, after: "'descr':", between: "'", "'"), let dtype = DType(rawValue: descr) else {
            throw NpyError.malformed(path: path, reason: "unsupported dtype in \(text)")
        }
        guard text.contains("'fortran_order': False") else { throw NpyError.malformed(path: path, reason: "Fortran order is not supported") }
        guard let shapeText = capture(text, after: "'shape':", between: "(", ")") else { throw NpyError.malformed(path: path, reason: "no shape") }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return Header(dtype: dtype, shape: shape, dataOffset: start + length)
    }

    private static func capture(_ text: String, after key: String, between open: Character, _ close: Character) -> String? {
        guard let keyRange = text.range(of: key) else { return nil }
        let rest = text[keyRange.upperBound...]
        guard let from = rest.firstIndex(of: open) else { return nil }
        let inner = rest[rest.index(after: from)...]
        guard let to = inner.firstIndex(of: close) else { return nil }
        return String(inner[..<to])
    }

    /// Reads a whole file: its header and its data as raw bytes.
    public static func read(path: String) throws -> (header: Header, data: [UInt8]) {
        let bytes: [UInt8]
        do { bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw NpyError.malformed(path: path, reason: "\(error.localizedDescription)")
        }
        let header = try readHeader(bytes, path: path)
        let expected = header.count * header.dtype.byteSize
        guard bytes.count - header.dataOffset == expected else {
            throw NpyError.malformed(path: path, reason: "\(bytes.count - header.dataOffset) data bytes, expected \(expected) for shape \(header.shape)")
        }
        return (header, Array(bytes[header.dataOffset...]))
    }
}
