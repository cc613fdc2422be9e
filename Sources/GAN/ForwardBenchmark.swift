import Foundation
import Formats
import NN

/// `darkroom bench generate` and `bench embed`: forward-only throughput of G (sampling) and of D's
/// feature extraction, evaluation mode, freshly initialised weights.
public struct ForwardBenchmark: Codable, Sendable {
    public var network: String
    public var precision: Precision
    public var size: Int
    public var channels: Int
    public var batch: Int
    public var iterations: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    public var peakRSSMegabytes: Double

    enum CodingKeys: String, CodingKey {
        case network, precision, size, channels, batch, iterations, seconds, imagesPerSecond = "img_per_s", peakRSSMegabytes = "peak_rss_mb"
    }

    public static func generator(_ configuration: DCGANConfiguration, batch: Int, iterations: Int, precision: Precision = .fp32) -> ForwardBenchmark {
        let network = DCGAN.generator(configuration, backend: .fast)
        network.setPrecision(precision)
        var random = SeededRandom(seed: 1)
        Initialization.dcgan(network.layers, random: &random)
        network.isTraining = false
        let z = configuration.generatorInput(latents: (0..<batch * configuration.nz).map { _ in random.nextNormal() })
        // Images as `generate` needs them: plain NCHW.
        return time("generate", precision, configuration, batch: batch, iterations: iterations) { _ = network.forward(z).plain() }
    }

    public static func embedding(_ configuration: DCGANConfiguration, batch: Int, iterations: Int, precision: Precision = .fp32) -> ForwardBenchmark {
        let extractor = FeatureExtractor(configuration: configuration, precision: precision)
        var random = SeededRandom(seed: 2)
        let count = batch * configuration.channels * configuration.imageSize * configuration.imageSize
        let images = Tensor(shape: [batch, configuration.channels, configuration.imageSize, configuration.imageSize],
                            values: (0..<count).map { _ in random.nextUniform() * 2 - 1 })
        return time("embed", precision, configuration, batch: batch, iterations: iterations) { _ = extractor.features(images) }
    }

    static func time(_ name: String, _ precision: Precision, _ configuration: DCGANConfiguration, batch: Int, iterations: Int, _ body: () -> Void) -> ForwardBenchmark {
        body()  // warm-up: primitives created, buffers allocated
        let started = Date()
        for _ in 0..<iterations { body() }
        let seconds = Date().timeIntervalSince(started)
        return ForwardBenchmark(network: name, precision: precision, size: configuration.imageSize, channels: configuration.channels, batch: batch,
                                iterations: iterations, seconds: seconds, imagesPerSecond: Double(batch * iterations) / seconds,
                                peakRSSMegabytes: peakResidentMegabytes())
    }
}
