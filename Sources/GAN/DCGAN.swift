import Formats
import NN

/// The adversarial loss.
public enum GANLoss: String, Codable, Sendable, CaseIterable {
    /// Non-saturating BCE: D minimises BCE(D(x), 1) + BCE(D(G(z)), 0); G minimises BCE(D(G(z)), 1).
    case bce
    /// Hinge: D minimises mean(max(0, 1 − D(x))) + mean(max(0, 1 + D(G(z)))); G minimises −mean(D(G(z))).
    case hinge
}

/// The distribution z is drawn from.
public enum LatentPrior: String, Codable, Sendable, CaseIterable {
    /// z ~ N(0, I), as the DCGAN paper's successors draw it.
    case normal
    /// z ~ N(0, I) scaled onto the sphere of radius √nz: uniform on it, at the norm a normal z has
    /// on average, with no latents near the origin or far out that training rarely saw.
    case sphere

    /// Fills `z` (rows of `dimension` values) from `random`.
    public func fill(_ z: UnsafeMutableBufferPointer<Float>, dimension: Int, random: inout SeededRandom) {
        for i in 0..<z.count { z[i] = random.nextNormal() }
        guard self == .sphere else { return }
        for row in stride(from: 0, to: z.count, by: dimension) {
            var squares: Float = 0
            for i in row..<row + dimension { squares += z[i] * z[i] }
            let scale = (Float(dimension) / max(squares, .leastNormalMagnitude)).squareRoot()
            for i in row..<row + dimension { z[i] *= scale }
        }
    }
}

/// The shape of a DCGAN (Radford et al. 2015, as in PyTorch's DCGAN example).
public struct DCGANConfiguration: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var channels: Int
    public var nz = 100
    public var ngf = 64
    public var ndf = 64
    /// Dropout probability after each discriminator block's activation (0: none).
    public var dropout: Float = 0
    /// The prior z is drawn from in training, sampling and `generate`.
    public var latent: LatentPrior = .normal

    public init(imageSize: Int, channels: Int, nz: Int = 100, ngf: Int = 64, ndf: Int = 64, dropout: Float = 0, latent: LatentPrior = .normal) {
        self.imageSize = imageSize
        self.channels = channels
        self.nz = nz
        self.ngf = ngf
        self.ndf = ndf
        self.dropout = dropout
        self.latent = latent
    }

    /// `count` latents from the prior, count·nz values.
    public func latents(count: Int, random: inout SeededRandom) -> [Float] {
        var z = [Float](repeating: 0, count: count * nz)
        z.withUnsafeMutableBufferPointer { latent.fill($0, dimension: nz, random: &random) }
        return z
    }

    public static let supportedSizes = [32: 3, 64: 4, 128: 5]

    /// Stride-2 blocks: 32 → 3, 64 → 4, 128 → 5.
    public var blocks: Int { DCGANConfiguration.supportedSizes[imageSize]! }

    enum CodingKeys: String, CodingKey {
        case imageSize = "image_size", channels, nz, ngf, ndf, dropout, latent = "noise"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        imageSize = try container.decode(Int.self, forKey: .imageSize)
        channels = try container.decode(Int.self, forKey: .channels)
        nz = try container.decode(Int.self, forKey: .nz)
        ngf = try container.decode(Int.self, forKey: .ngf)
        ndf = try container.decode(Int.self, forKey: .ndf)
        dropout = try container.decode(Float.self, forKey: .dropout)
        // Checkpoints written before the choice existed drew normal latents.
        latent = try container.decodeIfPresent(LatentPrior.self, forKey: .latent) ?? .normal
    }
}

public enum DCGAN {
    /// z [N, nz, 1, 1] → ConvT 4×4 (1 → 4 px) + BN + ReLU → [ConvT 4×4 s2 + BN + ReLU]… → ConvT to C + Tanh → [N, C, S, S].
    /// Layer indices (and so tensor names, `main.0.weight`, …) follow PyTorch's example.
    public static func generator(_ configuration: DCGANConfiguration, backend: Backend) -> Sequential {
        var layers: [Layer] = []
        func name() -> String { "main.\(layers.count)" }
        var width = configuration.ngf << (configuration.blocks - 1)
        layers.append(ConvTranspose2d(configuration.nz, width, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: name()))
        layers.append(BatchNorm2d(width, backend: backend, name: name()))
        layers.append(ReLU(backend: backend))
        for _ in 0..<(configuration.blocks - 1) {
            layers.append(ConvTranspose2d(width, width / 2, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
            layers.append(BatchNorm2d(width / 2, backend: backend, name: name()))
            layers.append(ReLU(backend: backend))
            width /= 2
        }
        layers.append(ConvTranspose2d(width, configuration.channels, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
        layers.append(Tanh(backend: backend))
        let network = Sequential(layers)
        network.needsInputGradient = false  // nobody needs ∂loss/∂z
        return network
    }

    /// x [N, C, S, S] → Conv 4×4 s2 + LeakyReLU(0.2) → [Conv 4×4 s2 + BN + LeakyReLU(0.2) (+ Dropout)]… → Conv 4×4 to one logit [N, 1, 1, 1].
    public static func discriminator(_ configuration: DCGANConfiguration, backend: Backend, seed: UInt64 = 0) -> Sequential {
        var layers: [Layer] = []
        func name() -> String { "main.\(layers.count)" }
        var width = configuration.ndf
        layers.append(Conv2d(configuration.channels, width, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
        layers.append(LeakyReLU(slope: 0.2, backend: backend))
        if configuration.dropout > 0 { layers.append(Dropout(probability: configuration.dropout, seed: seed)) }
        for block in 0..<(configuration.blocks - 1) {
            layers.append(Conv2d(width, width * 2, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
            layers.append(BatchNorm2d(width * 2, backend: backend, name: name()))
            layers.append(LeakyReLU(slope: 0.2, backend: backend))
            if configuration.dropout > 0 { layers.append(Dropout(probability: configuration.dropout, seed: seed &+ UInt64(block + 1))) }
            width *= 2
        }
        layers.append(Conv2d(width, 1, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: name()))
        return Sequential(layers)
    }
}
