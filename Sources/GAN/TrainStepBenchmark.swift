import Foundation
import Formats
import NN

/// `darkroom bench train-step`: full DCGAN iterations (D on real and fake, G through D) on random
/// data, as `shared/anchors/torch_dcgan.py speed` times them.
public struct TrainStepBenchmark: Codable, Sendable {
    public struct LayerTime: Codable, Sendable {
        public var layer: String
        public var pass: String
        public var millisecondsPerIteration: Double
        public var gflopPerSecond: Double?
        public var fractionOfPeak: Double?

        enum CodingKeys: String, CodingKey {
            case layer, pass, millisecondsPerIteration = "ms_per_iter", gflopPerSecond = "gflop_per_s", fractionOfPeak = "fraction_of_peak"
        }
    }

    /// Time inside oneDNN of one primitive kind, or outside it (`outside_onednn`: the Swift code
    /// between primitives, the optimiser steps most of it), per iteration.
    public struct KindTime: Codable, Sendable {
        public var kind: String
        public var millisecondsPerIteration: Double
        /// Of the iteration's time.
        public var share: Double

        enum CodingKeys: String, CodingKey {
            case kind, millisecondsPerIteration = "ms_per_iter", share
        }
    }

    public var size: Int
    public var channels: Int
    public var batch: Int
    public var backend: String
    public var precision: Precision
    public var iterations: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    public var gflopPerImage: Double
    public var gflopPerSecond: Double
    /// Of `peakGflopPerSecond`.
    public var fractionOfPeak: Double
    /// This machine's practical peak: a large sgemm on oneDNN, measured in the same run.
    public var peakGflopPerSecond: Double
    public var peakRSSMegabytes: Double
    public var layers: [LayerTime]?
    /// With `profile`: time by oneDNN primitive kind, from a second timed run without the layer
    /// timers.
    public var primitives: [KindTime]?

    /// GFLOP/s of a 2048³ sgemm (best of three): what the cores deliver on dense work.
    public static func measurePeak() -> Double {
        let n = 2048
        var random = SeededRandom(seed: 3)
        let a = (0..<n * n).map { _ in random.nextUniform() }, b = (0..<n * n).map { _ in random.nextUniform() }
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<3 {
            let started = Date()
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a.baseAddress!, lda: n,
                      b: b.baseAddress!, ldb: n, beta: 0, c: c.baseAddress!, ldc: n)
            } } }
            best = min(best, Date().timeIntervalSince(started))
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    enum CodingKeys: String, CodingKey {
        case size, channels, batch, backend, precision, iterations, seconds, layers, primitives
        case imagesPerSecond = "img_per_s", gflopPerImage = "gflop_per_image", gflopPerSecond = "gflop_per_s"
        case fractionOfPeak = "fraction_of_peak", peakGflopPerSecond = "peak_gflop_per_s", peakRSSMegabytes = "peak_rss_mb"
    }

    /// `step`: the loss and remedies to time (GFLOP figures count the plain step's convolutions).
    public static func run(configuration: DCGANConfiguration, step: StepOptions = StepOptions(), batch: Int, iterations: Int, warmup: Int = 2,
                           profile: Bool = false) -> TrainStepBenchmark {
        let backend = step.backend
        let trainer = DCGANTrainer(configuration: configuration, options: step, seed: 1)
        trainer.instanceNoiseLevel = step.instanceNoise
        var iteration = 0
        func timedStep(_ real: Tensor) {
            iteration += 1
            trainer.step(real: real, updateGenerator: iteration % step.discriminatorSteps == 0)
        }
        let real = Tensor(shape: [batch, configuration.channels, configuration.imageSize, configuration.imageSize], zeros: false)
        var random = SeededRandom(seed: 2)
        for i in 0..<real.count { real[i] = random.nextUniform() * 2 - 1 }  // initialised data: oneDNN runs at half speed on garbage
        let peakGflops = measurePeak()
        for _ in 0..<warmup { timedStep(real) }
        let generatorProfile = LayerProfile(name: "G"), discriminatorProfile = LayerProfile(name: "D")
        if profile {
            trainer.generator.profile = generatorProfile
            trainer.discriminator.profile = discriminatorProfile
        }
        let started = Date()
        for _ in 0..<iterations { timedStep(real) }
        let seconds = Date().timeIntervalSince(started)
        let flops = iterationFlops(trainer, batch: batch)
        let imagesPerSecond = Double(batch * iterations) / seconds
        var layers: [LayerTime]?
        var primitives: [KindTime]?
        if profile {
            trainer.generator.profile = nil
            trainer.discriminator.profile = nil
            PrimitiveTimes.start()
            let primitivesStarted = Date()
            for _ in 0..<iterations { timedStep(real) }
            let iterationSeconds = Date().timeIntervalSince(primitivesStarted) / Double(iterations)
            var byKind = PrimitiveTimes.stop().mapValues { $0 / Double(iterations) }
            byKind["outside_onednn"] = max(0, iterationSeconds - byKind.values.reduce(0, +))
            primitives = byKind.map { KindTime(kind: $0.key, millisecondsPerIteration: $0.value * 1000, share: $0.value / iterationSeconds) }
                .sorted { $0.millisecondsPerIteration > $1.millisecondsPerIteration }
            let convolutionFlops = layerFlops(trainer, batch: batch)
            layers = (generatorProfile.ordered + discriminatorProfile.ordered).map { entry in
                let perIteration = entry.seconds / Double(iterations)
                let work = convolutionFlops["\(entry.layer) \(entry.pass)"]
                return LayerTime(layer: entry.layer, pass: entry.pass, millisecondsPerIteration: perIteration * 1000,
                                 gflopPerSecond: work.map { $0 / perIteration / 1e9 },
                                 fractionOfPeak: work.map { $0 / perIteration / 1e9 / peakGflops })
            }.sorted { $0.millisecondsPerIteration > $1.millisecondsPerIteration }
        }
        let gflopPerSecond = flops * Double(iterations) / seconds / 1e9
        return TrainStepBenchmark(size: configuration.imageSize, channels: configuration.channels, batch: batch, backend: backend.rawValue, precision: step.precision,
                                  iterations: iterations, seconds: seconds, imagesPerSecond: imagesPerSecond,
                                  gflopPerImage: flops / Double(batch) / 1e9, gflopPerSecond: gflopPerSecond,
                                  fractionOfPeak: gflopPerSecond / peakGflops, peakGflopPerSecond: peakGflops,
                                  peakRSSMegabytes: peakResidentMegabytes(), layers: layers, primitives: primitives)
    }

    /// Convolution work of one layer pass (forward, or backward = data + weights where computed).
    static func geometries(_ network: Sequential, input: [Int]) -> [(index: Int, geometry: ConvolutionGeometry)] {
        var shape = input
        var result: [(Int, ConvolutionGeometry)] = []
        for (index, layer) in network.layers.enumerated() {
            if let conv = layer as? Conv2d {
                let g = ConvolutionGeometry(batch: shape[0], inChannels: conv.inChannels, inHeight: shape[2], inWidth: shape[3],
                                            outChannels: conv.outChannels, kernel: conv.kernel, stride: conv.stride, padding: conv.padding)
                result.append((index, g))
                shape = g.outputShape
            } else if let deconv = layer as? ConvTranspose2d {
                let height = (shape[2] - 1) * deconv.stride - 2 * deconv.padding + deconv.kernel
                let g = ConvolutionGeometry(batch: shape[0], inChannels: deconv.outChannels, inHeight: height, inWidth: height,
                                            outChannels: deconv.inChannels, kernel: deconv.kernel, stride: deconv.stride, padding: deconv.padding)
                result.append((index, g))
                shape = g.inputShape
            }
        }
        return result
    }

    static func layerFlops(_ trainer: DCGANTrainer, batch: Int) -> [String: Double] {
        var work: [String: Double] = [:]
        let size = trainer.configuration.imageSize
        // Per iteration (see DCGANTrainer.step): G runs forward once and backward once (weights, and
        // data except for its first layer). D runs forward three times (real, fake, fake again) and
        // backward three times: weights and data for real and fake (data not for its first layer),
        // then data only in the G step.
        for (index, g) in geometries(trainer.generator.network, input: [batch, trainer.configuration.nz, 1, 1]) {
            let name = "G.main.\(index) ConvTranspose2d"
            work[name + " forward"] = g.flops
            work[name + " backward"] = g.flops * (index == 0 ? 1 : 2)
        }
        for (index, g) in geometries(trainer.discriminator.network, input: [batch, trainer.configuration.channels, size, size]) {
            let name = "D.main.\(index) Conv2d"
            work[name + " forward"] = 3 * g.flops
            // Real and fake: weights only (first layer) or weights + data; G step: data only.
            work[name + " backward"] = index == 0 ? 2 * g.flops + g.flops : 2 * 2 * g.flops + g.flops
        }
        return work
    }

    static func iterationFlops(_ trainer: DCGANTrainer, batch: Int) -> Double {
        layerFlops(trainer, batch: batch).values.reduce(0, +)
    }
}

