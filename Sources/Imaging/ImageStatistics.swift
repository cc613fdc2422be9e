import Foundation

/// Summary statistics of an image's luma, for spotting blank and low-information images.
public struct ImageStatistics: Equatable, Sendable {
    public var mean: Double
    public var standardDeviation: Double
    /// Shannon entropy of the 256-bin luma histogram, in bits (0 for a constant image, 8 at most).
    public var entropy: Double

    /// Thresholds for `isLowInformation`; see README.md. A two-level image (clean line art, a
    /// symbolic icon) has at most 1 bit of entropy, so the entropy bar sits well below that:
    /// 0.25 bits is a two-level image with under 4% of its pixels off the dominant level.
    public static let lowInformationStandardDeviation = 3.0
    public static let lowInformationEntropy = 0.25

    /// Near-constant pixels: tiny spread, or nearly all pixels at one level.
    public var isLowInformation: Bool {
        standardDeviation < ImageStatistics.lowInformationStandardDeviation || entropy < ImageStatistics.lowInformationEntropy
    }

    public init(mean: Double, standardDeviation: Double, entropy: Double) {
        self.mean = mean
        self.standardDeviation = standardDeviation
        self.entropy = entropy
    }

    /// Of a gray image (colour is converted to luma first, alpha composited over `background`).
    public init(image: PixelImage, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        let gray = image.channels == 1 ? image : image.converted(toChannels: 1, background: background)
        var histogram = [Int](repeating: 0, count: 256)
        gray.pixels.withUnsafeBufferPointer { pixels in
            histogram.withUnsafeMutableBufferPointer { histogram in
                let bins = histogram.baseAddress!
                for value in pixels { bins[Int(value)] &+= 1 }
            }
        }
        let count = Double(max(gray.pixels.count, 1))
        var sum = 0.0, sumSquares = 0.0, entropy = 0.0
        for (level, n) in histogram.enumerated() where n > 0 {
            let value = Double(level), weight = Double(n)
            sum += value * weight
            sumSquares += value * value * weight
            let p = weight / count
            entropy -= p * log2(p)
        }
        let mean = sum / count
        self.init(mean: mean, standardDeviation: max(sumSquares / count - mean * mean, 0).squareRoot(), entropy: entropy)
    }
}
