import Crypto
import Formats
import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// Everything learnt from one file's bytes. No database here: `CatalogScanner` stores it.
public struct FileFacts: Sendable, Equatable {
    public var sha256: String?
    public var format: ImageFormat = .other
    public var width: Int?
    public var height: Int?
    public var channels: Int?
    public var bitDepth: Int?
    public var status: ImageStatus = .ok
    public var error: String?
    public var phash: PerceptualHash?
    public var statistics: ImageStatistics?
}

/// Reads, hashes, sniffs, probes and (for PNG and JPEG) fully decodes one file. Never throws:
/// every failure becomes a status and a reason.
public struct FileInspector: Sendable {
    public var maxPixels: Int
    /// Files larger than this are hashed but not decoded.
    public var maxFileBytes: Int64 = 1 << 30
    /// RGB under transparent pixels: statistics and the hash describe the image `prepare` feeds
    /// the model, so line art drawn in alpha over black RGB is not mistaken for a blank image.
    public var background: (UInt8, UInt8, UInt8)

    public init(maxPixels: Int, background: [UInt8] = [255, 255, 255]) {
        self.maxPixels = maxPixels
        self.background = (background[0], background[1], background[2])
    }

    public func inspect(_ file: WalkedFile) -> FileFacts {
        var facts = FileFacts()
        if let statError = file.statError {
            facts.status = .unreadable
            facts.error = statError
            return facts
        }
        let bytes: [UInt8]
        do {
            bytes = try FileInspector.readAll(file.absolutePath, expectedSize: file.sizeBytes, limit: maxFileBytes)
        } catch {
            facts.status = .unreadable
            facts.error = "\(error)"
            return facts
        }
        if bytes.isEmpty {
            facts.status = .empty
            facts.error = "file is empty (0 bytes)"
            return facts
        }
        facts.sha256 = hexString(SHA256.hash(data: bytes))
        facts.format = ImageFormat.sniff(bytes)
        do {
            let header = try ImageCodec.probe(bytes)
            facts.width = header.width
            facts.height = header.height
            facts.channels = header.channels
            facts.bitDepth = header.bitDepth
            if header.pixelCount > maxPixels { throw ImageDecodeError.tooLarge(width: header.width, height: header.height, limit: maxPixels) }
            // DCT-scaled JPEG decoding still reads (and so verifies) every coefficient.
            let image = try ImageCodec.decode(bytes, header: header, options: DecodeOptions(maxPixels: maxPixels, jpegMinimumSide: 64))
            let gray = image.channels == 1 ? image : image.converted(toChannels: 1, background: background)
            facts.phash = PerceptualHash(image: gray)
            facts.statistics = ImageStatistics(image: gray)
            facts.status = .ok
        } catch let error as ImageDecodeError {
            facts.status = ImageStatus(error)
            facts.error = error.description
        } catch {
            facts.status = .corrupt
            facts.error = "\(error)"
        }
        return facts
    }

    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads a whole file with POSIX calls (the path is raw bytes, not necessarily UTF-8).
    public static func readAll(_ path: [CChar], expectedSize: Int64, limit: Int64) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(description: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw ReadError(description: "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int64(info.st_size)
        guard size <= limit else { throw ReadError(description: "file of \(size) bytes exceeds the \(limit)-byte limit") }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var filled = 0
        while filled < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if got < 0 {
                if errno == EINTR { continue }
                throw ReadError(description: "read error: \(String(cString: strerror(errno)))")
            }
            if got == 0 { bytes.removeLast(bytes.count - filled); break }  // shrank while reading
            filled += got
        }
        return bytes
    }
}
