import Formats
import NN

/// Differentiable augmentation (Zhao et al. 2020, "DiffAugment"), applied to every image D sees,
/// real or fake, in both steps; the G step back-propagates through it. Per image, in order:
///   color:       x + (b − ½);  then (x − mean_c x)·2s + mean_c x;  then (x − mean x)·(k + ½) + mean x
///   translation: shift by up to ⅛ of the side in each direction, zeros shifted in
///   cutout:      zero a random square of half the side
/// with b, s, k uniform in [0, 1). Images are plain NCHW.
public struct DiffAugmentPolicy: Codable, Equatable, Sendable {
    public var color = false
    public var translation = false
    public var cutout = false

    public init(color: Bool = false, translation: Bool = false, cutout: Bool = false) {
        self.color = color
        self.translation = translation
        self.cutout = cutout
    }

    /// "color,translation,cutout" (any subset).
    public init?(_ text: String) {
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            switch part {
            case "color": color = true
            case "translation": translation = true
            case "cutout": cutout = true
            default: return nil
            }
        }
    }

    public var isEmpty: Bool { !color && !translation && !cutout }

    /// "color,translation,cutout" (the parts present), as the flag takes it.
    public var description: String {
        [color ? "color" : nil, translation ? "translation" : nil, cutout ? "cutout" : nil].compactMap { $0 }.joined(separator: ",")
    }
}

/// One application of the policy: the random draws are kept so backward undoes exactly this forward.
/// With `probability` p < 1 (adaptive augmentation, Karras et al. 2020) each operation is applied
/// to each image with probability p, drawn independently; p = 1 applies all to all, as DiffAugment.
public final class DiffAugment {
    public let policy: DiffAugmentPolicy
    private var brightness: [Float] = [], saturation: [Float] = [], contrast: [Float] = []
    private var shifts: [(dy: Int, dx: Int)] = []
    private var cutouts: [(top: Int, left: Int)] = []
    /// Per operation, which images it was applied to.
    private var colored: [Bool] = [], translated: [Bool] = [], cut: [Bool] = []
    private var output: Tensor?
    private var inputGradient: Tensor?

    public init(policy: DiffAugmentPolicy) { self.policy = policy }

    /// Which of n images an operation applies to. At p = 1 nothing is drawn, so the random stream
    /// is the one plain DiffAugment uses.
    private static func chosen(_ n: Int, _ probability: Float, _ random: inout SeededRandom) -> [Bool] {
        probability >= 1 ? [Bool](repeating: true, count: n) : (0..<n).map { _ in random.nextUniform() < probability }
    }

    /// x [N, C, H, W] plain → augmented copy.
    public func forward(_ input: Tensor, probability: Float = 1, random: inout SeededRandom) -> Tensor {
        let n = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3], plane = h * w
        let out = output ?? Tensor(shape: input.shape, zeros: false)
        output = out
        out.copy(from: input)
        colored = policy.color ? DiffAugment.chosen(n, probability, &random) : []
        translated = policy.translation ? DiffAugment.chosen(n, probability, &random) : []
        cut = policy.cutout ? DiffAugment.chosen(n, probability, &random) : []
        if policy.color {
            brightness = (0..<n).map { _ in random.nextUniform() - 0.5 }
            saturation = (0..<n).map { _ in random.nextUniform() * 2 }
            contrast = (0..<n).map { _ in random.nextUniform() + 0.5 }
            for image in 0..<n where colored[image] {
                let base = out.data + image * c * plane
                for i in 0..<(c * plane) { base[i] += brightness[image] }
                for p in 0..<plane {
                    var mean: Float = 0
                    for channel in 0..<c { mean += base[channel * plane + p] }
                    mean /= Float(c)
                    for channel in 0..<c { base[channel * plane + p] = (base[channel * plane + p] - mean) * saturation[image] + mean }
                }
                var mean: Float = 0
                for i in 0..<(c * plane) { mean += base[i] }
                mean /= Float(c * plane)
                for i in 0..<(c * plane) { base[i] = (base[i] - mean) * contrast[image] + mean }
            }
        }
        if policy.translation {
            let rangeY = h / 8, rangeX = w / 8
            shifts = (0..<n).map { _ in (Int(random.next() % UInt64(2 * rangeY + 1)) - rangeY, Int(random.next() % UInt64(2 * rangeX + 1)) - rangeX) }
            var shifted = [Float](repeating: 0, count: c * plane)
            for image in 0..<n where translated[image] {
                let base = out.data + image * c * plane, (dy, dx) = shifts[image]
                for i in 0..<shifted.count { shifted[i] = 0 }
                for channel in 0..<c {
                    for y in 0..<h where (0..<h).contains(y - dy) {
                        for x in 0..<w where (0..<w).contains(x - dx) {
                            shifted[channel * plane + y * w + x] = base[channel * plane + (y - dy) * w + (x - dx)]
                        }
                    }
                }
                for i in 0..<shifted.count { base[i] = shifted[i] }
            }
        }
        if policy.cutout {
            let size = h / 2
            cutouts = (0..<n).map { _ in (Int(random.next() % UInt64(h - size + 1)), Int(random.next() % UInt64(w - size + 1))) }
            for image in 0..<n where cut[image] {
                let (top, left) = cutouts[image]
                for channel in 0..<c {
                    let base = out.data + (image * c + channel) * plane
                    for y in top..<(top + size) { for x in left..<(left + size) { base[y * w + x] = 0 } }
                }
            }
        }
        return out
    }

    /// ∂loss/∂x from ∂loss/∂y, the draws of the last forward undone in reverse order.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let gradient = outputGradient.plain()
        let n = gradient.shape[0], c = gradient.shape[1], h = gradient.shape[2], w = gradient.shape[3], plane = h * w
        let dx = inputGradient ?? Tensor(shape: gradient.shape, zeros: false)
        inputGradient = dx
        dx.copy(from: gradient)
        if policy.cutout {
            let size = h / 2
            for image in 0..<n where cut[image] {
                let (top, left) = cutouts[image]
                for channel in 0..<c {
                    let base = dx.data + (image * c + channel) * plane
                    for y in top..<(top + size) { for x in left..<(left + size) { base[y * w + x] = 0 } }
                }
            }
        }
        if policy.translation {
            var shifted = [Float](repeating: 0, count: c * plane)
            for image in 0..<n where translated[image] {
                let base = dx.data + image * c * plane, (dy, dxShift) = shifts[image]
                for i in 0..<shifted.count { shifted[i] = 0 }
                for channel in 0..<c {
                    for y in 0..<h where (0..<h).contains(y + dy) {
                        for x in 0..<w where (0..<w).contains(x + dxShift) {
                            shifted[channel * plane + y * w + x] = base[channel * plane + (y + dy) * w + (x + dxShift)]
                        }
                    }
                }
                for i in 0..<shifted.count { base[i] = shifted[i] }
            }
        }
        if policy.color {
            for image in 0..<n where colored[image] {
                let base = dx.data + image * c * plane
                // contrast: dx = k·dy + (1 − k)·mean(dy)
                var mean: Float = 0
                for i in 0..<(c * plane) { mean += base[i] }
                mean /= Float(c * plane)
                for i in 0..<(c * plane) { base[i] = contrast[image] * base[i] + (1 - contrast[image]) * mean }
                // saturation: dx_c = s·dy_c + (1 − s)·mean_c(dy)
                for p in 0..<plane {
                    var channelMean: Float = 0
                    for channel in 0..<c { channelMean += base[channel * plane + p] }
                    channelMean /= Float(c)
                    for channel in 0..<c { base[channel * plane + p] = saturation[image] * base[channel * plane + p] + (1 - saturation[image]) * channelMean }
                }
                // brightness: dx = dy
            }
        }
        return dx
    }
}
