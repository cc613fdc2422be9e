import Formats
import NN

/// The adversarial loss.
public enum GANLoss: String, Codable, Sendable, CaseIterable {
    /// Non-saturating BCE: D minimises BCE(D(x), 1) + BCE(D(G(z)), 0); G minimises BCE(D(G(z)), 1).
    case bce
    /// Hinge: D minimises mean(max(0, 1 − D(x))) + mean(max(0, 1 + D(G(z)))); G minimises −mean(D(G(z))).
    case hinge
    /// Wasserstein with gradient penalty (Gulrajani et al. 2017): the critic minimises
    /// mean(D(G(z))) − mean(D(x)) + λ·mean(‖∇D(x̂)‖ − 1)² at x̂ between real and fake images;
    /// G minimises −mean(D(G(z))).
    case wganGP = "wgan-gp"
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

/// How the discriminator normalises its blocks.
public enum DiscriminatorNorm: String, Codable, Sendable, CaseIterable {
    /// BatchNorm after every conv but the first (the DCGAN paper).
    case batch
    /// None: a critic whose output for one image does not depend on the rest of the batch, as a
    /// per-image gradient penalty (WGAN-GP, Gulrajani et al. 2017) assumes.
    case none
}

/// How the generator doubles its resolution.
public enum GeneratorKind: String, Codable, Sendable, CaseIterable {
    /// 4×4 transposed convolutions with stride 2 (the DCGAN paper and PyTorch's example).
    case transposed
    /// Nearest-neighbour upsampling followed by a 3×3 convolution: every output pixel sees the same
    /// number of weights, so there is no checkerboard pattern (Odena et al. 2016).
    case upsample
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
    public var discriminatorNorm: DiscriminatorNorm = .batch
    /// A minibatch standard deviation channel before D's last convolution.
    public var minibatchStd = false
    public var generatorKind: GeneratorKind = .transposed
    /// Class names of a class-conditional model (`train --labels`), in index order; empty: an
    /// unconditional one. G takes each latent with its class as a one-hot row, D has a classifier head.
    public var classes: [String] = []
    /// A conditional model's D also scores each image with its class (the projection discriminator,
    /// Miyato & Koyama 2018): logit = ψ(φ(x)) + ⟨e_y, φ(x)⟩, a learned row e_y per class.
    public var projection = false
    /// A conditional model's G also scales and shifts every BatchNorm's channels by its class
    /// (`ClassAffine`: BigGAN's conditional BatchNorm), beside the one-hot input.
    public var classNorm = false

    public var isConditional: Bool { !classes.isEmpty }
    /// G's input channels: the latent, then the class's one-hot row. (The one-hot row through G's
    /// first, linear, layer is a learned class embedding added to the first block: concatenating
    /// and projecting are the same model.)
    public var generatorInputWidth: Int { nz + classes.count }

    /// G's input [N, nz + K, 1, 1]: each latent (nz values) followed by its class's one-hot row.
    /// `classes` nil: balanced, image i of class i mod K. An unconditional model takes the latents.
    /// `mixes[n]` moves weight `weight` of image n's row to class `partner`: (1 − w)·e_k + w·e_j,
    /// an image between the two classes (G's first layer is linear in the row).
    public func generatorInput(latents: [Float], classes: [Int]? = nil, mixes: [ClassMix?]? = nil) -> Tensor {
        let count = latents.count / nz, width = generatorInputWidth
        guard isConditional else { return Tensor(shape: [count, nz, 1, 1], values: latents) }
        let input = Tensor(shape: [count, width, 1, 1])
        for n in 0..<count {
            for j in 0..<nz { input.data[n * width + j] = latents[n * nz + j] }
            let label = classes?[n] ?? n % self.classes.count
            precondition((0..<self.classes.count).contains(label), "class \(label) of \(self.classes.count)")
            input.data[n * width + nz + label] = 1
            if let mix = mixes?[n] {
                precondition(mix.partner != label && (0..<self.classes.count).contains(mix.partner), "partner \(mix.partner) of class \(label)")
                input.data[n * width + nz + label] = 1 - mix.weight
                input.data[n * width + nz + mix.partner] = mix.weight
            }
        }
        input.markModified()
        return input
    }

    public init(imageSize: Int, channels: Int, nz: Int = 100, ngf: Int = 64, ndf: Int = 64, dropout: Float = 0, latent: LatentPrior = .normal,
                discriminatorNorm: DiscriminatorNorm = .batch, minibatchStd: Bool = false, generatorKind: GeneratorKind = .transposed) {
        self.imageSize = imageSize
        self.channels = channels
        self.nz = nz
        self.ngf = ngf
        self.ndf = ndf
        self.dropout = dropout
        self.latent = latent
        self.discriminatorNorm = discriminatorNorm
        self.minibatchStd = minibatchStd
        self.generatorKind = generatorKind
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
        case discriminatorNorm = "d_norm", minibatchStd = "minibatch_std", generatorKind = "generator", classes, projection
        case classNorm = "class_norm"
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
        discriminatorNorm = try container.decodeIfPresent(DiscriminatorNorm.self, forKey: .discriminatorNorm) ?? .batch
        minibatchStd = try container.decodeIfPresent(Bool.self, forKey: .minibatchStd) ?? false
        generatorKind = try container.decodeIfPresent(GeneratorKind.self, forKey: .generatorKind) ?? .transposed
        classes = try container.decodeIfPresent([String].self, forKey: .classes) ?? []
        projection = try container.decodeIfPresent(Bool.self, forKey: .projection) ?? false
        classNorm = try container.decodeIfPresent(Bool.self, forKey: .classNorm) ?? false
    }
}

public enum DCGAN {
    /// G for `configuration` (see `Generator`).
    public static func generator(_ configuration: DCGANConfiguration, backend: Backend) -> Generator {
        Generator(configuration, backend: backend)
    }

    /// D as one chain of layers (features, scoring, embedding); training uses `Discriminator`,
    /// which runs the same chain in its named blocks.
    public static func discriminator(_ configuration: DCGANConfiguration, backend: Backend, seed: UInt64 = 0) -> Sequential {
        Discriminator(configuration, backend: backend, seed: seed).network
    }
}

/// The generator in three blocks, forward and backward side by side:
///   input [N, nz (+ K), 1, 1]: z, then a conditional model's one-hot class row (`forward(latents:classes:)`)
///   → stem: ConvT 4×4 (1 → 4 px) + BN + ReLU → [N, ngf·2^(blocks−1), 4, 4]
///   → upsampling: [×2 + BN + ReLU] × (blocks − 1), halving the channels → [N, ngf, S/2, S/2]
///   → toImage: ×2 to C + Tanh → images [N, C, S, S] in [−1, 1]
/// where ×2 is a 4×4 stride-2 ConvT, or (`upsample`) nearest ×2 then a 3×3 conv; with `classNorm`
/// every BN is followed by the class's scale and shift (`ClassAffine`, tensors
/// `main.1.class_weight`, … beside the BN's). The blocks are one chain of layers whose indices (and
/// so tensor names, `main.0.weight`, …) follow PyTorch's example, so its `netG.load_state_dict`
/// takes a Darkroom checkpoint.
public final class Generator {
    public let configuration: DCGANConfiguration
    /// Every layer in order.
    public let network: Sequential
    /// network.layers[stem], [upsampling], [toImage].
    public let stem: Range<Int>
    public let upsampling: Range<Int>
    public let toImage: Range<Int>
    /// With `classNorm`: the layers that read each image's class.
    let classAffines: [ClassAffine]

    public init(_ configuration: DCGANConfiguration, backend: Backend) {
        self.configuration = configuration
        var layers: [Layer] = []
        // PyTorch's indices: the class affines sit beside their BatchNorm, not in the count.
        func name() -> String { "main.\(layers.count - layers.filter { $0 is ClassAffine }.count)" }
        func normalize(_ width: Int) {
            let norm = BatchNorm2d(width, backend: backend, name: name())
            layers.append(norm)
            if configuration.isConditional && configuration.classNorm {
                layers.append(ClassAffine(channels: width, classes: configuration.classes.count, name: norm.name))
            }
        }
        func double(_ inChannels: Int, _ outChannels: Int) {
            switch configuration.generatorKind {
            case .transposed:
                layers.append(ConvTranspose2d(inChannels, outChannels, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
            case .upsample:
                layers.append(Upsample2x())
                layers.append(Conv2d(inChannels, outChannels, kernel: 3, stride: 1, padding: 1, bias: false, backend: backend, name: name()))
            }
        }
        var width = configuration.ngf << (configuration.blocks - 1)
        layers.append(ConvTranspose2d(configuration.generatorInputWidth, width, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: name()))
        normalize(width)
        layers.append(ReLU(backend: backend))
        let stemEnd = layers.count
        for _ in 0..<(configuration.blocks - 1) {
            double(width, width / 2)
            normalize(width / 2)
            layers.append(ReLU(backend: backend))
            width /= 2
        }
        let upsamplingEnd = layers.count
        double(width, configuration.channels)
        layers.append(Tanh(backend: backend))
        network = Sequential(layers)
        network.needsInputGradient = false  // nobody needs ∂loss/∂z
        classAffines = layers.compactMap { $0 as? ClassAffine }
        stem = 0..<stemEnd
        upsampling = stemEnd..<upsamplingEnd
        toImage = upsamplingEnd..<layers.count
    }

    /// G's input [N, nz (+ K), 1, 1] → images [N, C, S, S], block by block. The class affines take
    /// each image's class from its one-hot row, the one place G's classes are written.
    public func forward(_ input: Tensor) -> Tensor {
        if !classAffines.isEmpty {
            let plain = input.plain(), width = configuration.generatorInputWidth, nz = configuration.nz
            let classes = (0..<plain.shape[0]).map { n in
                (0..<configuration.classes.count).max { plain.data[n * width + nz + $0] < plain.data[n * width + nz + $1] }!
            }
            for layer in classAffines { layer.classes = classes }
        }
        let features = network.forward(network.forward(input, layers: stem), layers: upsampling)
        return network.forward(features, layers: toImage)
    }

    /// Latents (N·nz values) and, for a conditional model, each one's class (nil: balanced, image
    /// i of class i mod K) → images.
    public func forward(latents: [Float], classes: [Int]? = nil, mixes: [ClassMix?]? = nil) -> Tensor {
        forward(configuration.generatorInput(latents: latents, classes: classes, mixes: mixes))
    }

    /// Back through the last forward from the images' gradient, accumulating weight gradients;
    /// returns the input's gradient only when `needsInputGradient` is set.
    @discardableResult
    public func backward(_ imageGradient: Tensor) -> Tensor? {
        let features = network.backward(imageGradient, layers: toImage)!
        return network.backward(network.backward(features, layers: upsampling)!, layers: stem)
    }

    public var layers: [Layer] { network.layers }
    public var parameters: [Parameter] { network.parameters }
    public func zeroGradients() { network.zeroGradients() }
    public func setPrecision(_ precision: Precision) { network.setPrecision(precision) }
    public var profile: LayerProfile? {
        get { network.profile }
        set { network.profile = newValue }
    }
    public var isTraining: Bool {
        get { network.isTraining }
        set { network.isTraining = newValue }
    }
    public var needsInputGradient: Bool {
        get { network.needsInputGradient }
        set { network.needsInputGradient = newValue }
    }
}

/// The discriminator in two blocks with named outputs:
///   images [N, C, S, S] → trunk: Conv 4×4 s2 + LeakyReLU(0.2) (+ Dropout) → [Conv 4×4 s2 (+ BN) + LeakyReLU(0.2) (+ Dropout)]…
///     → features [N, ndf·2^(blocks−1), 4, 4]
///   features → head: (minibatch std, +1 channel) → Conv 4×4 to one logit → logits [N, 1, 1, 1]
/// Feature matching reads `features`; the gradient penalties back-propagate to the images.
public final class Discriminator {
    /// Every layer in order: tensor names `main.0…` follow PyTorch's example.
    public let network: Sequential
    /// network.layers[trunk] make the features, network.layers[head] the logits.
    public let trunk: Range<Int>
    public let head: Range<Int>
    /// A class-conditional model's auxiliary classifier (AC-GAN, Odena et al. 2017): features →
    /// Conv 4×4 to K class logits [N, K, 1, 1]; tensor `classifier.weight`.
    public let classifier: Sequential?
    private var classifierGradient: Tensor?
    /// The projection discriminator's class rows e_y [K, F] (F: the features' size), zero at the
    /// start, so D begins as the unconditional one; tensor `projection.weight`.
    public let projection: Parameter?
    /// The last forward's classes and plain features, while it scored with the projection.
    private var projectedClasses: [Int]?
    private var projectedFeatures: Tensor?
    private var projectionGradient: Tensor?
    /// The last forward's features (owned by the trunk's last layer, overwritten by the next forward).
    public private(set) var features: Tensor?
    private var plainGradient: Tensor?

    public init(_ configuration: DCGANConfiguration, backend: Backend, seed: UInt64 = 0) {
        var layers: [Layer] = []
        func name() -> String { "main.\(layers.count)" }
        var width = configuration.ndf
        layers.append(Conv2d(configuration.channels, width, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
        layers.append(LeakyReLU(slope: 0.2, backend: backend))
        if configuration.dropout > 0 { layers.append(Dropout(probability: configuration.dropout, seed: seed)) }
        for block in 0..<(configuration.blocks - 1) {
            layers.append(Conv2d(width, width * 2, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: name()))
            if configuration.discriminatorNorm == .batch { layers.append(BatchNorm2d(width * 2, backend: backend, name: name())) }
            layers.append(LeakyReLU(slope: 0.2, backend: backend))
            if configuration.dropout > 0 { layers.append(Dropout(probability: configuration.dropout, seed: seed &+ UInt64(block + 1))) }
            width *= 2
        }
        let trunkEnd = layers.count
        if configuration.minibatchStd { layers.append(MinibatchStd()) }
        layers.append(Conv2d(width + (configuration.minibatchStd ? 1 : 0), 1, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: name()))
        network = Sequential(layers)
        trunk = 0..<trunkEnd
        head = trunkEnd..<layers.count
        classifier = configuration.isConditional
            ? Sequential([Conv2d(width, configuration.classes.count, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: "classifier")])
            : nil
        projection = configuration.isConditional && configuration.projection
            ? Parameter(name: "projection.weight", shape: [configuration.classes.count, width * 16]) : nil
        projection?.value.fill(0)
    }

    /// The class logits [N, K, 1, 1] (plain) of the last forward's features.
    public func classify() -> Tensor {
        guard let classifier, let features else { preconditionFailure("classify needs a conditional model and a forward pass") }
        return classifier.forward(features).plain()
    }

    /// images [N, C, S, S] → logits [N, 1, 1, 1], keeping `features`. With the projection and
    /// `classes` (−1: unlabelled, scored without it), each logit adds ⟨e_y, φ(x)⟩.
    public func forward(_ images: Tensor, classes: [Int]? = nil) -> Tensor {
        let features = forwardFeatures(images)
        let logits = network.forward(features, layers: head)
        guard let projection, let classes else {
            projectedClasses = nil
            return logits
        }
        let plain = logits.plain(), phi = features.converted(toPlainInto: &projectedFeatures)
        let width = phi.count / phi.shape[0]
        for (n, label) in classes.enumerated() where label >= 0 {
            let row = projection.value.data + label * width, x = phi.data + n * width
            var dot: Float = 0
            for j in 0..<width { dot += row[j] * x[j] }
            plain.data[n] += dot
        }
        plain.markModified()
        projectedClasses = classes
        return plain
    }

    /// The projection's share of the backward: ∂L/∂φ[n] = g[n]·e_y (into a plain features-shaped
    /// buffer) and ∂L/∂e_y += g[n]·φ[n]. nil when the last forward did not project.
    private func projectionBackward(_ logitGradient: Tensor) -> Tensor? {
        guard let projection, let classes = projectedClasses, let phi = projectedFeatures else { return nil }
        let g = logitGradient.plain(), width = phi.count / phi.shape[0]
        let out = projectionGradient ?? Tensor(shape: [1], zeros: false)
        projectionGradient = out
        out.reshape(to: phi.shape)
        out.data.update(repeating: 0, count: out.count)
        for (n, label) in classes.enumerated() where label >= 0 {
            let row = projection.value.data + label * width, x = phi.data + n * width, dx = out.data + n * width
            for j in 0..<width { dx[j] = g.data[n] * row[j] }
            if computesParameterGradients {
                let dRow = projection.gradient.data + label * width
                for j in 0..<width { dRow[j] += g.data[n] * x[j] }
            }
        }
        out.markModified()
        if computesParameterGradients { projection.gradient.markModified() }
        return out
    }

    /// images → features only (feature matching needs no logits).
    @discardableResult
    public func forwardFeatures(_ images: Tensor) -> Tensor {
        let features = network.forward(images, layers: trunk)
        self.features = features
        return features
    }

    /// Back through the last forward: from the logits' gradient, plus a gradient on the features
    /// (plain, the features' shape) when given; either may be absent, not both. Returns the images'
    /// gradient, or nil when `needsInputGradient` is false.
    public func backward(_ logitGradient: Tensor?, featureGradient: Tensor? = nil, classGradient: Tensor? = nil) -> Tensor? {
        var featureGradient = featureGradient
        if let logitGradient, let fromProjection = projectionBackward(logitGradient) {
            if let featureGradient {
                for i in 0..<fromProjection.count { fromProjection.data[i] += featureGradient.data[i] }
                fromProjection.markModified()
            }
            featureGradient = fromProjection
        }
        if let classGradient, let classifier {
            // The classifier's input gradient is ours until its next backward: add in place.
            let fromClassifier = classifier.backward(classGradient)!.converted(toPlainInto: &classifierGradient)
            if let featureGradient {
                for i in 0..<fromClassifier.count { fromClassifier.data[i] += featureGradient.data[i] }
                fromClassifier.markModified()
            }
            featureGradient = fromClassifier
        }
        var gradient: Tensor
        if let logitGradient {
            gradient = network.backward(logitGradient, layers: head)!
            if let featureGradient {
                // The head's input gradient is ours until the next backward: add in place.
                gradient = gradient.converted(toPlainInto: &plainGradient)
                for i in 0..<gradient.count { gradient.data[i] += featureGradient.data[i] }
                gradient.markModified()
            }
        } else {
            guard let featureGradient else { preconditionFailure("backward needs a gradient") }
            gradient = featureGradient
        }
        return network.backward(gradient, layers: trunk)
    }

    public var layers: [Layer] { network.layers }
    public var parameters: [Parameter] { network.parameters + (classifier?.parameters ?? []) + (projection.map { [$0] } ?? []) }
    public func zeroGradients() {
        network.zeroGradients()
        classifier?.zeroGradients()
        projection?.gradient.fill(0)
    }
    /// Sets the arithmetic of every convolution, the classifier's included.
    public func setPrecision(_ precision: Precision) {
        network.setPrecision(precision)
        classifier?.setPrecision(precision)
    }
    public var profile: LayerProfile? {
        get { network.profile }
        set { network.profile = newValue }
    }
    public var isTraining: Bool {
        get { network.isTraining }
        set {
            network.isTraining = newValue
            classifier?.isTraining = newValue
        }
    }
    public var needsInputGradient: Bool {
        get { network.needsInputGradient }
        set { network.needsInputGradient = newValue }
    }
    public var computesParameterGradients: Bool {
        get { network.computesParameterGradients }
        set {
            network.computesParameterGradients = newValue
            classifier?.computesParameterGradients = newValue
        }
    }

    /// While set, forward passes see the batch again as they saw it: BatchNorm leaves its running
    /// statistics alone and (`reusesDropoutMask`) dropout applies its last mask. A gradient
    /// penalty's extra passes must perturb the images only, not the function.
    public var freezesRunningStatistics = false {
        didSet { for case let norm as BatchNorm2d in layers { norm.updatesRunningStatistics = !freezesRunningStatistics } }
    }
    public var reusesDropoutMask = false {
        didSet { for case let dropout as Dropout in layers { dropout.reusesMask = reusesDropoutMask } }
    }
    /// Each LeakyReLU keeps the slopes of the last forward (see `LeakyReLU.freezesPattern`).
    public var freezesActivationPattern = false {
        didSet { for case let activation as LeakyReLU in layers { activation.freezesPattern = freezesActivationPattern } }
    }
}
