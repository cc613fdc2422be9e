import Formats
@testable import NN
import XCTest

/// The oneDNN fast path must agree with the plain-Swift reference, forward and backward, within
/// 1e-4 relative error (measured against the largest magnitude of the reference result).
final class FastPathTests: XCTestCase {
    private func assertClose(_ fast: Tensor, _ reference: Tensor, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(fast.shape, reference.shape, label, file: file, line: line)
        let a = fast.values, b = reference.values
        let scale = max(b.map { abs($0) }.max() ?? 0, 1e-6)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst / scale, 1e-4, "\(label): max error \(worst) at scale \(scale)", file: file, line: line)
    }

    private func randomize(_ tensor: Tensor, seed: UInt64, scale: Float = 1) {
        var random = SeededRandom(seed: seed)
        for i in 0..<tensor.count { tensor[i] = (random.nextUniform() * 2 - 1) * scale }
    }

    /// Runs forward and backward through a fast and a reference layer with equal weights and
    /// compares outputs, input gradients and parameter gradients.
    private func compare(fast: Layer, reference: Layer, inputShape: [Int], label: String) {
        for (f, r) in zip(fast.parameters, reference.parameters) {
            randomize(r.value, seed: UInt64(r.value.count), scale: 0.3)
            if r.name.hasSuffix("bn.weight") { for i in 0..<r.value.count { r.value[i] += 1 } }
            f.value.copy(from: r.value)
        }
        let input = Tensor(shape: inputShape)
        randomize(input, seed: 42)
        let fastOutput = fast.forward(input), referenceOutput = reference.forward(input)
        assertClose(fastOutput, referenceOutput, "\(label) forward")
        let gradient = Tensor(shape: referenceOutput.shape)
        randomize(gradient, seed: 7)
        for parameter in fast.parameters + reference.parameters { parameter.zeroGradient() }
        let fastInput = fast.backward(gradient), referenceInput = reference.backward(gradient)
        assertClose(fastInput!, referenceInput!, "\(label) input gradient")
        for (f, r) in zip(fast.parameters, reference.parameters) { assertClose(f.gradient, r.gradient, "\(label) \(r.name) gradient") }
    }

    /// oneDNN's time is counted by primitive kind between `start` and `stop`, and only then.
    func testPrimitiveTimesCountOnlyWhileRecording() {
        let shape = [2, 16, 4, 4]
        let plain = Tensor(shape: shape), blocked = Tensor(shape: shape)
        randomize(plain, seed: 3)
        let a = [Float](repeating: 1, count: 64 * 64)
        var c = [Float](repeating: 0, count: 64 * 64)
        func work() {
            Reorders.run(from: .plain(shape), plain.data, to: .channelBlocked(shape), blocked.data)
            sgemm(transposeA: false, transposeB: false, m: 64, n: 64, k: 64, alpha: 1, a: a, lda: 64, b: a, ldb: 64, beta: 0, c: &c, ldc: 64)
        }
        work()
        PrimitiveTimes.start()
        work()
        let recorded = PrimitiveTimes.stop()
        XCTAssertEqual(Set(recorded.keys), ["reorder", "sgemm"])
        XCTAssertTrue(recorded.values.allSatisfy { $0 > 0 }, "\(recorded)")
        work()
        XCTAssertEqual(PrimitiveTimes.stop(), recorded, "nothing is counted after stop")
        PrimitiveTimes.start()
        XCTAssertEqual(PrimitiveTimes.stop(), [:], "a new recording starts from nothing")
    }

    func testConvolutionsOnOddShapesAndBatchOne() {
        let cases: [(batch: Int, inC: Int, outC: Int, size: Int, kernel: Int, stride: Int, padding: Int)] = [
            (1, 3, 8, 9, 4, 2, 1), (2, 5, 7, 11, 3, 1, 1), (3, 16, 24, 8, 4, 2, 1), (1, 1, 16, 13, 5, 2, 2), (2, 8, 1, 4, 4, 1, 0),
        ]
        for c in cases {
            compare(fast: Conv2d(c.inC, c.outC, kernel: c.kernel, stride: c.stride, padding: c.padding, bias: false, backend: .fast),
                    reference: Conv2d(c.inC, c.outC, kernel: c.kernel, stride: c.stride, padding: c.padding, bias: false),
                    inputShape: [c.batch, c.inC, c.size, c.size], label: "conv \(c)")
            compare(fast: ConvTranspose2d(c.inC, c.outC, kernel: c.kernel, stride: c.stride, padding: c.padding, bias: false, backend: .fast),
                    reference: ConvTranspose2d(c.inC, c.outC, kernel: c.kernel, stride: c.stride, padding: c.padding, bias: false),
                    inputShape: [c.batch, c.inC, c.size, c.size], label: "deconv \(c)")
        }
        compare(fast: Conv2d(3, 8, kernel: 3, padding: 1, bias: true, backend: .fast), reference: Conv2d(3, 8, kernel: 3, padding: 1, bias: true),
                inputShape: [2, 3, 6, 6], label: "conv with bias")
    }

    func testBatchNormInTrainingAndItsRunningStatistics() {
        for shape in [[4, 8, 5, 5], [1, 16, 4, 4], [3, 3, 7, 2]] {
            let fast = BatchNorm2d(shape[1], backend: .fast, name: "bn"), reference = BatchNorm2d(shape[1], name: "bn")
            compare(fast: fast, reference: reference, inputShape: shape, label: "batchnorm \(shape)")
            assertClose(fast.runningMean, reference.runningMean, "running mean")
            assertClose(fast.runningVariance, reference.runningVariance, "running variance")
            fast.isTraining = false
            reference.isTraining = false
            let input = Tensor(shape: shape)
            randomize(input, seed: 3)
            assertClose(fast.forward(input), reference.forward(input), "batchnorm evaluation \(shape)")
        }
    }

    func testActivationsOnPlainAndBlockedLayouts() {
        let makers: [(Backend) -> Layer] = [{ ReLU(backend: $0) }, { LeakyReLU(slope: 0.2, backend: $0) }, { Tanh(backend: $0) }, { Sigmoid(backend: $0) }]
        for make in makers {
            compare(fast: make(.fast), reference: make(.reference), inputShape: [2, 5, 3, 3], label: "\(type(of: make(.fast))) plain")
            // Blocked input: the output of a fast convolution.
            let conv = Conv2d(8, 16, kernel: 3, padding: 1, bias: false, backend: .fast)
            let input = Tensor(shape: [2, 8, 6, 6])
            randomize(input, seed: 5)
            randomize(conv.weight.value, seed: 6, scale: 0.3)
            let blocked = conv.forward(input)
            XCTAssertNotNil(blocked.format)
            let fast = make(.fast), reference = make(.reference)
            let plainInput = blocked.plain()
            assertClose(fast.forward(blocked), reference.forward(plainInput), "\(type(of: fast)) blocked forward")
            let gradient = Tensor(shape: blocked.shape)
            randomize(gradient, seed: 8)
            assertClose(fast.backward(gradient)!, reference.backward(gradient)!, "\(type(of: fast)) blocked backward")
        }
    }

    /// The DCGAN blocks chained, so activations stay in oneDNN's blocked layouts between layers.
    func testDCGANBlocksChainedInBlockedLayouts() {
        func discriminator(_ backend: Backend) -> Sequential {
            Sequential([Conv2d(3, 16, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: "c1"), LeakyReLU(slope: 0.2, backend: backend),
                        Conv2d(16, 32, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: "c2"),
                        BatchNorm2d(32, backend: backend, name: "bn"), LeakyReLU(slope: 0.2, backend: backend),
                        Conv2d(32, 1, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: "c3")])
        }
        func generator(_ backend: Backend) -> Sequential {
            Sequential([ConvTranspose2d(20, 32, kernel: 4, stride: 1, padding: 0, bias: false, backend: backend, name: "d1"),
                        BatchNorm2d(32, backend: backend, name: "bn"), ReLU(backend: backend),
                        ConvTranspose2d(32, 16, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: "d2"),
                        BatchNorm2d(16, backend: backend, name: "bn"), ReLU(backend: backend),
                        ConvTranspose2d(16, 3, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: "d3"), Tanh(backend: backend)])
        }
        compare(fast: discriminator(.fast), reference: discriminator(.reference), inputShape: [4, 3, 16, 16], label: "D")
        // Between fast layers the activations are in a blocked layout, not plain NCHW.
        let conv = Conv2d(16, 32, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast)
        let hidden = conv.forward(Tensor(shape: [4, 16, 16, 16]))
        XCTAssertNotNil(hidden.format, "expected oneDNN to choose a blocked layout")
        let norm = BatchNorm2d(32, backend: .fast)
        XCTAssertEqual(norm.forward(hidden).format, hidden.format, "batch norm keeps the blocked layout")
        compare(fast: generator(.fast), reference: generator(.reference), inputShape: [4, 20, 1, 1], label: "G")
    }

    /// Edge layers whose kernel covers the whole input run as one GEMM on the neighbours' blocked
    /// layout, or on plain NCHW when that layout pads the channels.
    func testDenseEdgeLayersOnBlockedAndChannelPaddedLayouts() {
        for channels in [32, 24] {
            func generatorHead(_ backend: Backend) -> Sequential {
                Sequential([ConvTranspose2d(10, channels, kernel: 4, bias: false, backend: backend, name: "d1"),
                            BatchNorm2d(channels, backend: backend, name: "bn"), ReLU(backend: backend)])
            }
            func discriminatorTail(_ backend: Backend) -> Sequential {
                Sequential([Conv2d(8, channels, kernel: 4, stride: 2, padding: 1, bias: false, backend: backend, name: "c1"),
                            BatchNorm2d(channels, backend: backend, name: "bn"), LeakyReLU(slope: 0.2, backend: backend),
                            Conv2d(channels, 3, kernel: 4, bias: false, backend: backend, name: "c2")])
            }
            compare(fast: generatorHead(.fast), reference: generatorHead(.reference), inputShape: [3, 10, 1, 1], label: "G head \(channels)")
            compare(fast: discriminatorTail(.fast), reference: discriminatorTail(.reference), inputShape: [3, 8, 8, 8], label: "D tail \(channels)")
        }
        let head = ConvTranspose2d(10, 32, kernel: 4, bias: false, backend: .fast)
        XCTAssertNotNil(head.forward(Tensor(shape: [2, 10, 1, 1])).format, "the dense layer writes the blocked layout its neighbours use")
    }

    /// The fast path keeps reordered weights between passes: they must follow every change of the
    /// weight, by the optimiser or by hand.
    func testReorderedWeightsFollowWeightChanges() {
        let fast = Conv2d(16, 32, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast)
        let reference = Conv2d(16, 32, kernel: 4, stride: 2, padding: 1, bias: false)
        randomize(reference.weight.value, seed: 11, scale: 0.3)
        fast.weight.value.copy(from: reference.weight.value)
        let input = Tensor(shape: [2, 16, 8, 8])
        randomize(input, seed: 12)
        assertClose(fast.forward(input), reference.forward(input), "before any change")
        let gradient = Tensor(shape: [2, 32, 4, 4])
        randomize(gradient, seed: 13)
        let optimizers = [Adam(parameters: fast.parameters, learningRate: 0.05), Adam(parameters: reference.parameters, learningRate: 0.05)]
        for (layer, optimizer) in zip([fast, reference] as [Conv2d], optimizers) {
            layer.weight.zeroGradient()
            _ = layer.backward(gradient)
            optimizer.step()
        }
        assertClose(fast.forward(input), reference.forward(input), "after an optimiser step")
        assertClose(fast.backward(gradient)!, reference.backward(gradient)!, "input gradient after an optimiser step")
        fast.weight.value[0] += 1
        reference.weight.value[0] += 1
        assertClose(fast.forward(input), reference.forward(input), "after a change by hand")
    }

    /// The exact layer shapes of the 64-pixel DCGAN (ngf = ndf = 64, nz = 100), at batch 2.
    func testExactDCGANLayerShapes() {
        let discriminatorLayers: [(Int, Int, Int, Int, Int, Int)] = [(3, 64, 64, 4, 2, 1), (64, 128, 32, 4, 2, 1), (128, 256, 16, 4, 2, 1),
                                                                     (256, 512, 8, 4, 2, 1), (512, 1, 4, 4, 1, 0)]
        for (inC, outC, size, kernel, stride, padding) in discriminatorLayers {
            compare(fast: Conv2d(inC, outC, kernel: kernel, stride: stride, padding: padding, bias: false, backend: .fast),
                    reference: Conv2d(inC, outC, kernel: kernel, stride: stride, padding: padding, bias: false),
                    inputShape: [2, inC, size, size], label: "D conv \(inC)->\(outC) at \(size)")
        }
        let generatorLayers: [(Int, Int, Int, Int, Int, Int)] = [(100, 512, 1, 4, 1, 0), (512, 256, 4, 4, 2, 1), (256, 128, 8, 4, 2, 1),
                                                                 (128, 64, 16, 4, 2, 1), (64, 3, 32, 4, 2, 1)]
        for (inC, outC, size, kernel, stride, padding) in generatorLayers {
            compare(fast: ConvTranspose2d(inC, outC, kernel: kernel, stride: stride, padding: padding, bias: false, backend: .fast),
                    reference: ConvTranspose2d(inC, outC, kernel: kernel, stride: stride, padding: padding, bias: false),
                    inputShape: [2, inC, size, size], label: "G deconv \(inC)->\(outC) at \(size)")
        }
    }
}

final class PoolingTests: XCTestCase {
    func testGridPoolingOnBlockedLayoutsMatchesTheReference() {
        let conv = Conv2d(3, 16, kernel: 3, padding: 1, bias: false, backend: .fast)
        var random = SeededRandom(seed: 9)
        for i in 0..<conv.weight.value.count { conv.weight.value[i] = random.nextNormal() * 0.2 }
        let input = Tensor(shape: [2, 3, 16, 16], values: (0..<1536).map { _ in random.nextUniform() * 2 - 1 })
        let blocked = conv.forward(input)
        XCTAssertNotNil(blocked.format)
        XCTAssertEqual(MaxPoolToGrid()(blocked).values, MaxPoolToGrid.reference(blocked))
        XCTAssertEqual(MaxPoolToGrid()(blocked).shape, [2, 16, 4, 4])
    }
}
