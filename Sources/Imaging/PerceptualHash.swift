import Foundation

/// The DCT perceptual hash of imagehash.phash (hash_size 8, highfreq_factor 4): gray, Lanczos
/// resize to 32×32, 2-D DCT-II, the top-left 8×8 low frequencies compared with their median.
/// Bit 63 is the first coefficient, so `hex` matches `str(imagehash.phash(img))`.
public struct PerceptualHash: Hashable, Sendable, CustomStringConvertible {
    public let bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    public init?(hex: String) {
        guard hex.count == 16, let value = UInt64(hex, radix: 16) else { return nil }
        bits = value
    }

    public var hex: String {
        let digits = String(bits, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    public var description: String { hex }

    public func distance(to other: PerceptualHash) -> Int { (bits ^ other.bits).nonzeroBitCount }

    static let side = 32
    static let lowFrequencies = 8

    /// cos(π k (2n + 1) / 2N) for k < 8, n < 32: the DCT-II basis (scipy's unnormalised form
    /// has a factor 2, which does not change a comparison with the median).
    private static let basis: [Double] = {
        var table = [Double](repeating: 0, count: lowFrequencies * side)
        for k in 0..<lowFrequencies {
            for n in 0..<side {
                table[k * side + n] = cos(Double.pi * Double(k) * Double(2 * n + 1) / Double(2 * side))
            }
        }
        return table
    }()

    /// Alpha is composited over `background` first (imagehash drops it: the same only for opaque images).
    public init(image: PixelImage, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        let gray = image.channels == 1 ? image : image.converted(toChannels: 1, background: background)
        let small = gray.resized(width: PerceptualHash.side, height: PerceptualHash.side, filter: .lanczos)
        self.init(gray32: small.pixels)
    }

    /// From 32×32 gray pixels, row-major.
    init(gray32 pixels: [UInt8]) {
        let n = PerceptualHash.side, k = PerceptualHash.lowFrequencies
        var coefficients = [Double](repeating: 0, count: k * k)
        var rows = [Double](repeating: 0, count: k * n)
        // Converted once, not once per frequency: the inner loop is then plain multiply-adds.
        let values = pixels.map(Double.init)
        PerceptualHash.basis.withUnsafeBufferPointer { basis in
            values.withUnsafeBufferPointer { pixels in
                rows.withUnsafeMutableBufferPointer { rows in
                    let basis = basis.baseAddress!, pixels = pixels.baseAddress!, rows = rows.baseAddress!
                    // DCT down the columns (axis 0), keeping the first 8 frequencies: rows[u][x].
                    for u in 0..<k {
                        let out = rows + u &* n
                        for y in 0..<n {
                            let w = basis[u &* n &+ y], line = pixels + y &* n
                            for x in 0..<n { out[x] += w * line[x] }
                        }
                    }
                    // Then along the rows (axis 1): coefficients[u][v].
                    for u in 0..<k {
                        for v in 0..<k {
                            let along = basis + v &* n, row = rows + u &* n
                            var sum = 0.0
                            for x in 0..<n { sum += along[x] * row[x] }
                            coefficients[u &* k &+ v] = sum
                        }
                    }
                }
            }
        }
        var sorted = coefficients
        sorted.sort()
        let median = (sorted[k * k / 2 - 1] + sorted[k * k / 2]) / 2
        var bits: UInt64 = 0
        for value in coefficients { bits = bits << 1 | (value > median ? 1 : 0) }
        self.bits = bits
    }
}
