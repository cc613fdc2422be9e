/// Just enough EXIF to read the orientation tag (0x0112) from a JPEG's APP1 segment.
public enum Exif {
    /// The orientation (1...8) if the JPEG carries one, else nil.
    public static func orientation(inJPEG data: [UInt8]) -> Int? {
        guard data.count > 4, data[0] == 0xFF, data[1] == 0xD8 else { return nil }
        var offset = 2
        while offset + 4 <= data.count {
            guard data[offset] == 0xFF else { return nil }
            let marker = data[offset + 1]
            if marker == 0xFF { offset += 1; continue }       // fill byte
            if marker == 0xDA || marker == 0xD9 { return nil } // start of scan / end: no EXIF before it
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { offset += 2; continue }
            let length = Int(data[offset + 2]) << 8 | Int(data[offset + 3])
            guard length >= 2, offset + 2 + length <= data.count else { return nil }
            let body = offset + 4
            if marker == 0xE1, length >= 8, Array(data[body..<body + 6]) == Array("Exif\0\0".utf8) {
                return orientation(inTIFF: data[(body + 6)..<(offset + 2 + length)])
            }
            offset += 2 + length
        }
        return nil
    }

    static func orientation(inTIFF tiff: ArraySlice<UInt8>) -> Int? {
        let bytes = Array(tiff)
        guard bytes.count >= 8 else { return nil }
        let little: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= bytes.count else { return nil }
            return little ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : Int(bytes[at]) << 8 | Int(bytes[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let high = u16(little ? at + 2 : at), let low = u16(little ? at : at + 2) else { return nil }
            return high << 16 | low
        }
        guard let ifd = u32(4), let entries = u16(ifd) else { return nil }
        for entry in 0..<entries {
            let at = ifd + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112, let value = u16(at + 8), (1...8).contains(value) { return value }
        }
        return nil
    }
}

extension PixelImage {
    /// Applies an EXIF orientation (1...8) so the image displays upright, as Pillow's exif_transpose.
    public func oriented(_ orientation: Int) -> PixelImage {
        let swaps = orientation >= 5
        let outWidth = swaps ? height : width, outHeight = swaps ? width : height
        let w = width, h = height
        // Source coordinates of output pixel (x, y) for each orientation.
        let source: (Int, Int) -> (Int, Int)
        switch orientation {
        case 2: source = { x, y in (w - 1 - x, y) }
        case 3: source = { x, y in (w - 1 - x, h - 1 - y) }
        case 4: source = { x, y in (x, h - 1 - y) }
        case 5: source = { x, y in (y, x) }
        case 6: source = { x, y in (y, h - 1 - x) }
        case 7: source = { x, y in (w - 1 - y, h - 1 - x) }
        case 8: source = { x, y in (w - 1 - y, x) }
        default: return self
        }
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let (sx, sy) = source(x, y)
                let from = (sy * w + sx) * channels, to = (y * outWidth + x) * channels
                for c in 0..<channels { out[to + c] = pixels[from + c] }
            }
        }
        return PixelImage(width: outWidth, height: outHeight, channels: channels, pixels: out)
    }
}
