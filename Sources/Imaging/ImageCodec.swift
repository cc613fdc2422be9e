/// Why a file could not be decoded. Callers add the path.
public enum ImageDecodeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The decoder rejected the data; the text is libpng's or libjpeg's message.
    case corrupt(String)
    /// The data ends before the image does.
    case truncated(String)
    /// The header declares more pixels than allowed; nothing was decoded.
    case tooLarge(width: Int, height: Int, limit: Int)
    /// A recognised image format that Darkroom does not decode.
    case unsupported(ImageFormat)
    /// No known image signature.
    case notImage

    public var description: String {
        switch self {
        case .corrupt(let message): return "corrupt: \(message)"
        case .truncated(let message): return "truncated: \(message)"
        case .tooLarge(let width, let height, let limit): return "too large: \(width)x\(height) = \(width * height) pixels exceeds the limit of \(limit)"
        case .unsupported(let format): return "unsupported format: \(format.rawValue)"
        case .notImage: return "not an image (no known signature)"
        }
    }
}

/// What a header says about an image, before any pixel is decoded.
public struct ImageHeader: Equatable, Sendable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// Channels as stored: 1 gray, 2 gray+alpha, 3 colour, 4 colour+alpha (PNG) or CMYK (JPEG).
    public var channels: Int
    public var bitDepth: Int
    public var pixelCount: Int { width * height }
}

/// How to decode, for `ImageCodec.decode`.
public struct DecodeOptions: Sendable {
    /// Largest width×height decoded; larger images fail with `.tooLarge` before any allocation.
    /// The default is Pillow's decompression-bomb limit.
    public var maxPixels: Int = 89_478_485
    /// JPEG only: decode at about this size or larger on the shorter side, using libjpeg-turbo's
    /// DCT scaling (1/2, 1/4, 1/8). The entropy-coded stream is still read in full. 0 = full size.
    public var jpegMinimumSide: Int = 0
    /// JPEG only: rotate/flip as the EXIF orientation tag says.
    public var applyOrientation: Bool = true

    public init(maxPixels: Int = 89_478_485, jpegMinimumSide: Int = 0, applyOrientation: Bool = true) {
        self.maxPixels = maxPixels
        self.jpegMinimumSide = jpegMinimumSide
        self.applyOrientation = applyOrientation
    }
}

/// Format-independent entry points: sniff, read the header, decode.
public enum ImageCodec {
    public static func probe(_ data: [UInt8]) throws -> ImageHeader {
        switch ImageFormat.sniff(data) {
        case .png: return try PNG.probe(data)
        case .jpeg: return try JPEG.probe(data)
        case .other: throw ImageDecodeError.notImage
        case let format: throw ImageDecodeError.unsupported(format)
        }
    }

    /// Decodes to 8-bit pixels with the file's own channels (gray, gray+alpha, RGB or RGBA).
    /// Pass the header from an earlier `probe` to skip reading it again.
    public static func decode(_ data: [UInt8], header knownHeader: ImageHeader? = nil, options: DecodeOptions = DecodeOptions()) throws -> PixelImage {
        let header = try knownHeader ?? probe(data)
        if header.pixelCount > options.maxPixels {
            throw ImageDecodeError.tooLarge(width: header.width, height: header.height, limit: options.maxPixels)
        }
        switch header.format {
        case .png: return try PNG.decode(data, header: header)
        case .jpeg:
            var scale = 1
            if options.jpegMinimumSide > 0 {
                while scale < 8 && min(header.width, header.height) / (scale * 2) >= options.jpegMinimumSide { scale *= 2 }
            }
            return try JPEG.decode(data, scaleDenominator: scale, applyOrientation: options.applyOrientation)
        default: throw ImageDecodeError.unsupported(header.format)
        }
    }
}
