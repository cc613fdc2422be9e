import Foundation
import Formats

/// FixMatch's strong view (Sohn et al. 2020, its RandAugment variant): two operations drawn at
/// random from the pool, each at a magnitude drawn uniformly, on one image [C, S, S] in [-1, 1]
/// (−1 black, 1 white). The pool and ranges are FixMatch's (`fixmatch_augment_pool`): identity,
/// autocontrast, equalize, posterize, solarize, brightness, contrast, sharpness, colour, rotation
/// up to 30°, shear up to 0.3 and translation up to 30% of the side on each axis. Geometric
/// operations sample bilinearly and repeat the edge pixels, as `augment`'s shift does.
public struct RandAugment: Sendable {
    public enum Operation: CaseIterable, Sendable {
        case identity, autoContrast, equalize, posterize, solarize, brightness, contrast, sharpness, color
        case rotate, shearX, shearY, translateX, translateY
    }

    public let channels: Int
    public let imageSize: Int
    /// Operations per image (RandAugment's N).
    public var count = 2

    public init(channels: Int, imageSize: Int) {
        self.channels = channels
        self.imageSize = imageSize
    }

    public func apply(_ image: UnsafeMutablePointer<Float>, random: inout SeededRandom) {
        let pool = Operation.allCases
        for _ in 0..<count {
            let operation = pool[random.nextInt(in: 0...pool.count - 1)]
            apply(operation, magnitude: random.nextUniform(), sign: random.nextUniform() < 0.5 ? -1 : 1, to: image)
        }
    }

    /// `magnitude` in [0, 1] of the operation's range; `sign` flips the geometric ones.
    public func apply(_ operation: Operation, magnitude: Float, sign: Float, to image: UnsafeMutablePointer<Float>) {
        let plane = imageSize * imageSize
        // Photometric operations work on pixel values p = (x + 1) / 2 in [0, 1].
        func perPixel(_ transform: (Float) -> Float) {
            for i in 0..<channels * plane { image[i] = 2 * min(max(transform((image[i] + 1) / 2), 0), 1) - 1 }
        }
        let factor = 0.05 + 1.9 * magnitude  // PIL's enhance factors, 0.05–1.95
        switch operation {
        case .identity: break
        case .autoContrast:
            for c in 0..<channels {
                let values = UnsafeMutableBufferPointer(start: image + c * plane, count: plane)
                let low = values.min()!, high = values.max()!
                guard high > low else { continue }
                for i in values.indices { values[i] = 2 * (values[i] - low) / (high - low) - 1 }
            }
        case .equalize:
            for c in 0..<channels { equalize(image + c * plane) }
        case .posterize:
            let bits = 4 + Int(magnitude * 4.999), mask = 0xFF & ~((1 << (8 - bits)) - 1)
            perPixel { Float(Int($0 * 255 + 0.5) & mask) / 255 }
        case .solarize:
            // PIL inverts levels at or above 256 − 256·magnitude: none at magnitude 0.
            let threshold = (256 - 256 * magnitude) / 255
            perPixel { $0 < threshold ? $0 : 1 - $0 }
        case .brightness: perPixel { $0 * factor }
        case .contrast:
            var mean: Float = 0
            for i in 0..<channels * plane { mean += (image[i] + 1) / 2 }
            mean /= Float(channels * plane)
            perPixel { mean + factor * ($0 - mean) }
        case .sharpness: sharpen(image, factor: factor)
        case .color:
            guard channels == 3 else { return }
            for i in 0..<plane {
                let grey = 0.299 * image[i] + 0.587 * image[plane + i] + 0.114 * image[2 * plane + i]
                for c in 0..<3 { image[c * plane + i] = min(max(grey + factor * (image[c * plane + i] - grey), -1), 1) }
            }
        case .rotate:
            let angle = sign * magnitude * 30 * .pi / 180
            warp(image, [cosf(angle), -sinf(angle), sinf(angle), cosf(angle)], shift: (0, 0))
        case .shearX: warp(image, [1, sign * magnitude * 0.3, 0, 1], shift: (0, 0))
        case .shearY: warp(image, [1, 0, sign * magnitude * 0.3, 1], shift: (0, 0))
        case .translateX: warp(image, [1, 0, 0, 1], shift: (sign * magnitude * 0.3 * Float(imageSize), 0))
        case .translateY: warp(image, [1, 0, 0, 1], shift: (0, sign * magnitude * 0.3 * Float(imageSize)))
        }
    }

    /// Each output pixel reads the input at m · (x − centre, y − centre) + centre − shift
    /// (m: row-major 2×2), bilinearly, the edges repeated.
    func warp(_ image: UnsafeMutablePointer<Float>, _ m: [Float], shift: (x: Float, y: Float)) {
        let size = imageSize, plane = size * size, centre = Float(size - 1) / 2
        let source = [Float](UnsafeBufferPointer(start: image, count: channels * plane))
        func clamp(_ v: Int) -> Int { min(max(v, 0), size - 1) }
        for y in 0..<size {
            for x in 0..<size {
                let dx = Float(x) - centre, dy = Float(y) - centre
                let sx = m[0] * dx + m[1] * dy + centre - shift.x, sy = m[2] * dx + m[3] * dy + centre - shift.y
                let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                let fx = sx - Float(x0), fy = sy - Float(y0)
                let left = clamp(x0), right = clamp(x0 + 1), top = clamp(y0), bottom = clamp(y0 + 1)
                for c in 0..<channels {
                    let base = c * plane
                    let upper = source[base + top * size + left] * (1 - fx) + source[base + top * size + right] * fx
                    let lower = source[base + bottom * size + left] * (1 - fx) + source[base + bottom * size + right] * fx
                    image[base + y * size + x] = upper * (1 - fy) + lower * fy
                }
            }
        }
    }

    /// PIL's ImageOps.equalize on one channel: 256 levels mapped through the histogram's
    /// cumulative counts (the lowest level's own count left out, as PIL does).
    func equalize(_ values: UnsafeMutablePointer<Float>) {
        let plane = imageSize * imageSize
        var histogram = [Int](repeating: 0, count: 256)
        func level(_ v: Float) -> Int { min(max(Int((v + 1) / 2 * 255 + 0.5), 0), 255) }
        for i in 0..<plane { histogram[level(values[i])] += 1 }
        let step = (plane - (histogram.last { $0 > 0 } ?? 0)) / 255
        guard step > 0 else { return }
        var lookup = [Float](repeating: 0, count: 256), running = step / 2
        for k in 0..<256 {
            lookup[k] = 2 * Float(min(running / step, 255)) / 255 - 1
            running += histogram[k]
        }
        for i in 0..<plane { values[i] = lookup[level(values[i])] }
    }

    /// PIL's ImageEnhance.Sharpness: a blend with its SMOOTH filter's image (3×3, centre weight 5
    /// of 13), the border pixels left as they are.
    func sharpen(_ image: UnsafeMutablePointer<Float>, factor: Float) {
        let size = imageSize, plane = size * size
        guard size > 2 else { return }
        for c in 0..<channels {
            let channel = image + c * plane
            let source = [Float](UnsafeBufferPointer(start: channel, count: plane))
            for y in 1..<size - 1 {
                for x in 1..<size - 1 {
                    var sum: Float = 4 * source[y * size + x]
                    for dy in -1...1 { for dx in -1...1 { sum += source[(y + dy) * size + x + dx] } }
                    let smooth = sum / 13
                    channel[y * size + x] = min(max(smooth + factor * (source[y * size + x] - smooth), -1), 1)
                }
            }
        }
    }
}
