/// An 8-bit image, rows top to bottom, channels interleaved (HWC):
/// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
public struct PixelImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel count does not match \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: fill, count: width * height * channels))
    }

    public var hasAlpha: Bool { channels == 2 || channels == 4 }

    /// ITU-R 601-2 luma in Pillow's fixed point ("L" mode): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
    @inline(__always)
    public static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt32(r) &* 19595 &+ UInt32(g) &* 38470 &+ UInt32(b) &* 7471 &+ 0x8000) >> 16)
    }

    /// Converts to 1 (gray) or 3 (RGB) channels. Alpha is composited over `background`
    /// (an RGB triple; its luma for gray output).
    public func converted(toChannels target: Int, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) -> PixelImage {
        precondition(target == 1 || target == 3, "target channels must be 1 or 3")
        if channels == target { return self }
        let count = width * height
        var out = [UInt8](repeating: 0, count: count * target)
        let backgroundGray = PixelImage.luma(background.0, background.1, background.2)
        @inline(__always) func over(_ value: UInt8, _ alpha: UInt8, _ back: UInt8) -> UInt8 {
            let a = UInt32(alpha)
            return UInt8((UInt32(value) * a + UInt32(back) * (255 - a) + 127) / 255)
        }
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                switch (channels, target) {
                case (1, 3):
                    for i in 0..<count { let v = src[i]; dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v }
                case (2, 1):
                    for i in 0..<count { dst[i] = over(src[2 * i], src[2 * i + 1], backgroundGray) }
                case (2, 3):
                    for i in 0..<count {
                        let a = src[2 * i + 1], v = src[2 * i]
                        dst[3 * i] = over(v, a, background.0); dst[3 * i + 1] = over(v, a, background.1); dst[3 * i + 2] = over(v, a, background.2)
                    }
                case (3, 1):
                    for i in 0..<count { dst[i] = PixelImage.luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]) }
                case (4, 3), (4, 1):
                    for i in 0..<count {
                        let a = src[4 * i + 3]
                        let r = over(src[4 * i], a, background.0), g = over(src[4 * i + 1], a, background.1), b = over(src[4 * i + 2], a, background.2)
                        if target == 3 { dst[3 * i] = r; dst[3 * i + 1] = g; dst[3 * i + 2] = b } else { dst[i] = PixelImage.luma(r, g, b) }
                    }
                default:
                    preconditionFailure("no conversion from \(channels) to \(target) channels")
                }
            }
        }
        return PixelImage(width: width, height: height, channels: target, pixels: out)
    }

    /// `white`, `black` or `R,G,B` (each 0–255): the colour shown under transparent pixels.
    public static func parseColor(_ text: String) -> [UInt8]? {
        switch text {
        case "white": return [255, 255, 255]
        case "black": return [0, 0, 0]
        default:
            let parts = text.split(separator: ",").compactMap { UInt8($0.trimmingCharacters(in: .whitespaces)) }
            return parts.count == 3 ? parts : nil
        }
    }

    /// The sub-image at (x, y) of size w×h, clipped to the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> PixelImage {
        precondition(x >= 0 && y >= 0 && x + w <= width && y + h <= height, "crop outside the image")
        var out = [UInt8](repeating: 0, count: w * h * channels)
        let rowBytes = w * channels
        for row in 0..<h {
            let from = ((y + row) * width + x) * channels
            out.replaceSubrange(row * rowBytes..<(row + 1) * rowBytes, with: pixels[from..<from + rowBytes])
        }
        return PixelImage(width: w, height: h, channels: channels, pixels: out)
    }
}
