import CPNG

/// libpng, through the CPNG shim (which owns the setjmp).
public enum PNG {
    public static func probe(_ data: [UInt8]) throws -> ImageHeader {
        var info = cpng_info()
        let status = data.withUnsafeBufferPointer { cpng_probe($0.baseAddress, $0.count, &info) }
        try check(status, &info)
        return header(info)
    }

    /// Decodes every row and reads on to IEND, so a success means the whole file is sound.
    public static func decode(_ data: [UInt8], header: ImageHeader? = nil) throws -> PixelImage {
        let head = try header ?? probe(data)
        let channels = head.channels
        var info = cpng_info()
        var status: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: head.width * head.height * channels) { buffer, count in
            status = data.withUnsafeBufferPointer { cpng_decode($0.baseAddress, $0.count, buffer.baseAddress, buffer.count, &info) }
            count = buffer.count
        }
        try check(status, &info)
        return PixelImage(width: head.width, height: head.height, channels: channels, pixels: pixels)
    }

    /// 8-bit gray, gray+alpha, RGB or RGBA to PNG bytes.
    public static func encode(_ image: PixelImage) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer {
            cpng_encode($0.baseAddress, UInt32(image.width), UInt32(image.height), Int32(image.channels), &out, &size, &message, message.count)
        }
        guard status == Int32(CPNG_OK.rawValue), let out else {
            throw ImageDecodeError.corrupt("PNG encoding failed: " + String(cString: message))
        }
        defer { cpng_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    private static func header(_ info: cpng_info) -> ImageHeader {
        ImageHeader(format: .png, width: Int(info.width), height: Int(info.height),
                    channels: Int(info.channels), bitDepth: Int(info.bit_depth))
    }

    private static func check(_ status: Int32, _ info: inout cpng_info) throws {
        let message = withUnsafeBytes(of: &info.message) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        switch UInt32(status) {
        case CPNG_OK.rawValue: return
        case CPNG_TRUNCATED.rawValue: throw ImageDecodeError.truncated(message)
        default: throw ImageDecodeError.corrupt(message.isEmpty ? "libpng error" : message)
        }
    }
}
