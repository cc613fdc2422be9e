import Foundation

/// A separable resampling filter, as in Pillow's Resample.c.
public enum ResampleFilter: Hashable, Sendable {
    case box, bilinear, lanczos

    var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear: return 1.0
        case .lanczos: return 3.0
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0
        case .bilinear:
            let a = abs(x)
            return a < 1.0 ? 1.0 - a : 0.0
        case .lanczos:
            guard -3.0 <= x && x < 3.0 else { return 0.0 }
            return ResampleFilter.sinc(x) * ResampleFilter.sinc(x / 3.0)
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0.0 { return 1.0 }
        let t = x * Double.pi
        return sin(t) / t
    }
}

/// Pillow-compatible resizing: when shrinking, the filter widens by the scale factor, so every
/// source pixel contributes (antialiasing); coefficients in the same 22-bit fixed point as
/// Pillow's 8-bit path, horizontal pass first. Output equals `Image.resize` for gray and RGB
/// images. Channels are filtered independently: composite alpha away before resizing (Pillow
/// premultiplies RGBA instead).
extension PixelImage {
    public func resized(width outWidth: Int, height outHeight: Int, filter: ResampleFilter = .bilinear) -> PixelImage {
        precondition(outWidth > 0 && outHeight > 0, "resize to an empty image")
        var image = self
        if outWidth != width { image = image.resampledHorizontally(to: outWidth, filter: filter) }
        if outHeight != height { image = image.resampledVertically(to: outHeight, filter: filter) }
        return image
    }

    private static let precisionBits = 32 - 8 - 2

    /// For each output position: first source index, tap count, and fixed-point weights (ksize each).
    private struct Coefficients {
        var first: [Int]
        var count: [Int]
        var weights: [Int32]
        var ksize: Int
    }

    private struct CoefficientKey: Hashable { var inSize: Int; var outSize: Int; var filter: ResampleFilter }
    nonisolated(unsafe) private static var coefficientCache: [CoefficientKey: Coefficients] = [:]
    private static let coefficientLock = NSLock()

    /// Coefficients depend only on the sizes and filter; datasets repeat the same few sizes, so
    /// they are computed once (a bounded cache: the sin() calls of Lanczos are not free).
    private static func coefficients(inSize: Int, outSize: Int, filter: ResampleFilter) -> Coefficients {
        let key = CoefficientKey(inSize: inSize, outSize: outSize, filter: filter)
        coefficientLock.lock()
        if let cached = coefficientCache[key] { coefficientLock.unlock(); return cached }
        coefficientLock.unlock()
        let computed = computeCoefficients(inSize: inSize, outSize: outSize, filter: filter)
        coefficientLock.lock()
        if coefficientCache.count >= 256 { coefficientCache.removeAll() }
        coefficientCache[key] = computed
        coefficientLock.unlock()
        return computed
    }

    private static func computeCoefficients(inSize: Int, outSize: Int, filter: ResampleFilter) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = filter.support * filterScale
        let ksize = Int(ceil(support)) * 2 + 1
        var first = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<xmax {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                total += w
            }
            for x in 0..<xmax {
                let normalised = total != 0 ? k[x] / total : k[x]
                let scaled = normalised * Double(1 << precisionBits)
                weights[xx * ksize + x] = Int32(normalised < 0 ? scaled - 0.5 : scaled + 0.5)
            }
            first[xx] = xmin
            count[xx] = xmax
        }
        return Coefficients(first: first, count: count, weights: weights, ksize: ksize)
    }

    @inline(__always)
    private static func clip8(_ value: Int32) -> UInt8 {
        if value >= Int32(1 << (precisionBits + 8)) { return 255 }
        if value <= 0 { return 0 }
        return UInt8(value >> Int32(precisionBits))
    }

    private func resampledHorizontally(to outWidth: Int, filter: ResampleFilter) -> PixelImage {
        // Gray: the same sums, taps in the same order, run as the vertical pass on the transpose,
        // whose inner loop runs along rows and vectorises (the perceptual hash's case).
        if channels == 1 { return transposed().resampledVertically(to: outWidth, filter: filter).transposed() }
        let c = PixelImage.coefficients(inSize: width, outSize: outWidth, filter: filter)
        var out = [UInt8](repeating: 0, count: outWidth * height * channels)
        let half = Int32(1 << (PixelImage.precisionBits - 1))
        let channels = channels, ksize = c.ksize
        // Raw pointers and wrapping index arithmetic: the taps are the whole cost, and checked
        // arithmetic on every index doubled it.
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { weights in
                    let source = src.baseAddress!, target = dst.baseAddress!, weight = weights.baseAddress!
                    for y in 0..<height {
                        let row = source + y &* width &* channels, outRow = target + y &* outWidth &* channels
                        for xx in 0..<outWidth {
                            let taps = c.count[xx], k = weight + xx &* ksize
                            let first = row + c.first[xx] &* channels
                            if channels == 1 {
                                // Gray (the perceptual hash's case): one contiguous dot product.
                                var sum = half
                                for x in 0..<taps { sum &+= Int32(first[x]) &* k[x] }
                                outRow[xx] = PixelImage.clip8(sum)
                                continue
                            }
                            for ch in 0..<channels {
                                var sum = half
                                for x in 0..<taps { sum &+= Int32(first[x &* channels &+ ch]) &* k[x] }
                                outRow[xx &* channels &+ ch] = PixelImage.clip8(sum)
                            }
                        }
                    }
                }
            }
        }
        return PixelImage(width: outWidth, height: height, channels: channels, pixels: out)
    }

    /// Rows become columns (gray images).
    private func transposed() -> PixelImage {
        precondition(channels == 1)
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let source = src.baseAddress!, target = dst.baseAddress!
                for y in 0..<height {
                    let row = source + y &* width
                    for x in 0..<width { target[x &* height &+ y] = row[x] }
                }
            }
        }
        return PixelImage(width: height, height: width, channels: 1, pixels: out)
    }

    private func resampledVertically(to outHeight: Int, filter: ResampleFilter) -> PixelImage {
        let c = PixelImage.coefficients(inSize: height, outSize: outHeight, filter: filter)
        let rowLength = width * channels, ksize = c.ksize
        var out = [UInt8](repeating: 0, count: rowLength * outHeight)
        let half = Int32(1 << (PixelImage.precisionBits - 1))
        var sums = [Int32](repeating: 0, count: rowLength)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { weights in
                    sums.withUnsafeMutableBufferPointer { sums in
                        let source = src.baseAddress!, target = dst.baseAddress!, sum = sums.baseAddress!
                        for yy in 0..<outHeight {
                            let taps = c.count[yy], k = weights.baseAddress! + yy &* ksize
                            for i in 0..<rowLength { sum[i] = half }
                            // Row-at-a-time accumulation: contiguous, vectorisable inner loop.
                            for y in 0..<taps {
                                let weight = k[y], row = source + (c.first[yy] &+ y) &* rowLength
                                for i in 0..<rowLength { sum[i] &+= Int32(row[i]) &* weight }
                            }
                            let outRow = target + yy &* rowLength
                            for i in 0..<rowLength { outRow[i] = PixelImage.clip8(sum[i]) }
                        }
                    }
                }
            }
        }
        return PixelImage(width: width, height: outHeight, channels: channels, pixels: out)
    }
}
