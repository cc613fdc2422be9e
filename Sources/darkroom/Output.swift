import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Messages for people go to stderr; stdout carries only results (JSON, CSV).
enum Console {
    static let isTerminal = isatty(STDERR_FILENO) != 0

    static func note(_ message: String) {
        // Results printed before a note come before it where both streams share one file (a
        // pipeline's log): stdout is block-buffered there, stderr is not.
        fflush(stdout)
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// A progress line, redrawn in place on a terminal and silent otherwise.
    static func progress(_ message: String) {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(message)".utf8))
    }

    static func endProgress() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
