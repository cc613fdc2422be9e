import CZlib
import Foundation

public enum RecipeError: Error, CustomStringConvertible {
    case cannotRead(path: String, reason: String)
    case badFormat(path: String, reason: String)
    case outputNotEmpty(path: String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason): return "\(path): cannot read: \(reason)"
        case .badFormat(let path, let reason): return "\(path): \(reason)"
        case .outputNotEmpty(let path): return "\(path): output folder is not empty (pass --overwrite to replace it)"
        }
    }
}

/// Reads a whole gzip (or plain) file through zlib.
func readGzip(_ path: String) throws -> [UInt8] {
    guard let file = gzopen(path, "rb") else { throw RecipeError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
    defer { gzclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let got = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        if got < 0 { throw RecipeError.cannotRead(path: path, reason: "corrupt gzip stream") }
        if got == 0 { break }
        bytes.append(contentsOf: chunk[0..<Int(got)])
    }
    return bytes
}
