import CJPEG

/// libjpeg-turbo, through the CJPEG shim (which owns the setjmp).
public enum JPEG {
    public static func probe(_ data: [UInt8]) throws -> ImageHeader {
        var info = cjpeg_info()
        let status = data.withUnsafeBufferPointer { cjpeg_probe($0.baseAddress, $0.count, &info) }
        try check(status, &info)
        return ImageHeader(format: .jpeg, width: Int(info.width), height: Int(info.height),
                           channels: Int(info.components), bitDepth: 8)
    }

    /// Decodes the whole stream to gray or RGB. CMYK/YCCK are converted to RGB as Pillow does
    /// (Adobe's inverted CMYK recognised); the EXIF orientation is applied when asked.
    /// Corrupt-data warnings count as corruption: the pixels would not be the encoder's.
    public static func decode(_ data: [UInt8], scaleDenominator: Int = 1, applyOrientation: Bool = true) throws -> PixelImage {
        var info = cjpeg_info()
        let probeStatus = data.withUnsafeBufferPointer { cjpeg_probe_scaled($0.baseAddress, $0.count, Int32(scaleDenominator), &info) }
        try check(probeStatus, &info)
        let width = Int(info.output_width), height = Int(info.output_height), channels = Int(info.channels)
        var status: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * channels) { buffer, count in
            status = data.withUnsafeBufferPointer {
                cjpeg_decode($0.baseAddress, $0.count, Int32(scaleDenominator), buffer.baseAddress, buffer.count, &info)
            }
            count = buffer.count
        }
        try check(status, &info)
        var image = PixelImage(width: width, height: height, channels: channels, pixels: pixels)
        if channels == 4 { image = cmykToRGB(image, inverted: info.adobe_inverted != 0) }
        if applyOrientation, let orientation = Exif.orientation(inJPEG: data), orientation != 1 {
            image = image.oriented(orientation)
        }
        return image
    }

    /// Gray or RGB to JPEG bytes; quality 1...100.
    public static func encode(_ image: PixelImage, quality: Int = 90, progressive: Bool = false) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer {
            cjpeg_encode($0.baseAddress, UInt32(image.width), UInt32(image.height), Int32(image.channels),
                         Int32(max(1, min(100, quality))), progressive ? 1 : 0, &out, &size, &message, message.count)
        }
        guard status == Int32(CJPEG_OK.rawValue), let out else {
            throw ImageDecodeError.corrupt("JPEG encoding failed: " + String(cString: message))
        }
        defer { cjpeg_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// Pillow's cmyk2rgb: each channel is nk − c·nk/255 with nk = 255 − k, in its rounding.
    static func cmykToRGB(_ image: PixelImage, inverted: Bool) -> PixelImage {
        let count = image.width * image.height
        var out = [UInt8](repeating: 0, count: count * 3)
        @inline(__always) func mulDiv255(_ a: Int, _ b: Int) -> Int {
            let t = a * b + 128
            return (t + (t >> 8)) >> 8
        }
        for i in 0..<count {
            var c = Int(image.pixels[4 * i]), m = Int(image.pixels[4 * i + 1])
            var y = Int(image.pixels[4 * i + 2]), k = Int(image.pixels[4 * i + 3])
            if inverted { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k }
            let nk = 255 - k
            out[3 * i] = UInt8(clamping: nk - mulDiv255(c, nk))
            out[3 * i + 1] = UInt8(clamping: nk - mulDiv255(m, nk))
            out[3 * i + 2] = UInt8(clamping: nk - mulDiv255(y, nk))
        }
        return PixelImage(width: image.width, height: image.height, channels: 3, pixels: out)
    }

    private static func check(_ status: Int32, _ info: inout cjpeg_info) throws {
        let message = withUnsafeBytes(of: &info.message) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        switch UInt32(status) {
        case CJPEG_OK.rawValue: return
        case CJPEG_TRUNCATED.rawValue: throw ImageDecodeError.truncated(message.isEmpty ? "premature end of JPEG file" : message)
        default: throw ImageDecodeError.corrupt(message.isEmpty ? "libjpeg error" : message)
        }
    }
}
