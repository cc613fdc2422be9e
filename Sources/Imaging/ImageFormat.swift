/// An image container format, recognised from the file's first bytes rather than its name.
public enum ImageFormat: String, Codable, Sendable, CaseIterable {
    case png, jpeg, gif, webp, bmp, tiff, other

    /// Formats Darkroom decodes; the rest are catalogued as `unsupported`.
    public var isDecodable: Bool { self == .png || self == .jpeg }

    /// Sniffs the format from magic bytes. Twelve bytes are enough for every format here.
    public static func sniff<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat where Bytes.Element == UInt8 {
        let head = Array(bytes.prefix(12))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<offset + magic.count]) == magic
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("BM".utf8)) && head.count >= 6 { return .bmp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        return .other
    }
}
