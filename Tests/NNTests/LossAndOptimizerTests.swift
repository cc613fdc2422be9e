import Foundation
import NN
import XCTest

final class LossAndOptimizerTests: XCTestCase {
    func testBinaryCrossEntropyWithLogitsIsStableAndMatchesTheDefinition() {
        let logits = Tensor(shape: [4], values: [-2, 0, 3, 500])
        let result = Loss.binaryCrossEntropyWithLogits(logits, target: 1)
        let expected = [-2.0, 0, 3].map { log(1 + exp(-$0)) }.reduce(0, +) / 4  // the 500 term is ~0
        XCTAssertEqual(Double(result.value), expected, accuracy: 1e-6)
        XCTAssertFalse(result.value.isNaN)
        XCTAssertEqual(Double(result.gradient[0]), (1 / (1 + exp(2.0)) - 1) / 4, accuracy: 1e-6)
        XCTAssertEqual(Loss.binaryCrossEntropyWithLogits(Tensor(shape: [1], values: [-500]), target: 0).value, 0, accuracy: 1e-6)
        XCTAssertEqual(Loss.binaryCrossEntropyWithLogits(Tensor(shape: [1], values: [-500]), target: 1).value, 500, accuracy: 1e-3)
        // Finite differences on the loss itself.
        let x = Tensor(shape: [3], values: [0.3, -1.2, 2.0])
        let analytic = Loss.binaryCrossEntropyWithLogits(x, target: 0.9).gradient.values
        for i in 0..<3 {
            let saved = x[i]
            x[i] = saved + 1e-2; let plus = Loss.binaryCrossEntropyWithLogits(x, target: 0.9).value
            x[i] = saved - 1e-2; let minus = Loss.binaryCrossEntropyWithLogits(x, target: 0.9).value
            x[i] = saved
            XCTAssertEqual(analytic[i], (plus - minus) / 2e-2, accuracy: 1e-4)
        }
    }

    func testHingeLosses() {
        let logits = Tensor(shape: [4], values: [2, 0.5, -0.5, -3])
        let real = Loss.hinge(logits, sign: 1)
        XCTAssertEqual(real.value, (0 + 0.5 + 1.5 + 4) / 4, accuracy: 1e-6)
        XCTAssertEqual(real.gradient.values, [0, -0.25, -0.25, -0.25])
        let fake = Loss.hinge(logits, sign: -1)
        XCTAssertEqual(fake.value, (3 + 1.5 + 0.5 + 0) / 4, accuracy: 1e-6)
        XCTAssertEqual(fake.gradient.values, [0.25, 0.25, 0.25, 0])
        XCTAssertEqual(Loss.hingeGenerator(logits).value, 0.25, accuracy: 1e-6)
    }

    func testAdamMatchesAHandComputedSequence() {
        let parameter = Parameter(name: "p", shape: [2])
        parameter.value[0] = 1
        parameter.value[1] = -2
        let adam = Adam(parameters: [parameter], learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        var p = [1.0, -2.0], m = [0.0, 0.0], v = [0.0, 0.0]
        let gradients: [[Double]] = [[0.5, -1], [0.25, 2], [-1, 0.1]]
        for (t, g) in gradients.enumerated() {
            parameter.gradient[0] = Float(g[0])
            parameter.gradient[1] = Float(g[1])
            adam.step()
            let step = Double(t + 1)
            for i in 0..<2 {
                let gradient = g[i] + 0.01 * p[i]
                m[i] = 0.9 * m[i] + 0.1 * gradient
                v[i] = 0.999 * v[i] + 0.001 * gradient * gradient
                let mHat = m[i] / (1 - pow(0.9, step)), vHat = v[i] / (1 - pow(0.999, step))
                p[i] -= 0.1 * mHat / (vHat.squareRoot() + 1e-8)
                XCTAssertEqual(Double(parameter.value[i]), p[i], accuracy: 1e-5, "step \(t + 1), element \(i)")
            }
        }
        // The first step moves each element by about lr·sign(g): Adam's signature.
        XCTAssertEqual(adam.stepCount, 3)
    }

    func testSGDWithMomentum() {
        let parameter = Parameter(name: "p", shape: [1])
        parameter.value[0] = 1
        let sgd = SGD(parameters: [parameter], learningRate: 0.1, momentum: 0.9)
        parameter.gradient[0] = 1
        sgd.step()
        XCTAssertEqual(parameter.value[0], 0.9, accuracy: 1e-6)     // b = 1
        sgd.step()
        XCTAssertEqual(parameter.value[0], 0.71, accuracy: 1e-6)    // b = 1.9
    }
}

final class AdamVectorTests: XCTestCase {
    /// The 16-lane loop and the scalar tail must compute the same update.
    /// Every element follows the scalar rule: the 16-lane body, the scalar tail, and both halves of
    /// a tensor large enough to be updated on two threads.
    func testVectorisedUpdateEqualsTheScalarRule() {
        for count in [37, (1 << 16) + 21] {
            let parameter = Parameter(name: "p", shape: [count])
            for i in 0..<count { parameter.value[i] = Float(i % 97) / 50 - 1; parameter.gradient[i] = Float((i * 7) % 11) / 5 - 1 }
            let expectedStart = parameter.value.values, gradients = parameter.gradient.values
            let adam = Adam(parameters: [parameter], learningRate: 0.01, beta1: 0.5, beta2: 0.999, weightDecay: 0.1)
            adam.step()
            for i in 0..<count {
                let g = gradients[i] + 0.1 * expectedStart[i]
                let m = 0.5 * g, v = 0.001 * g * g
                let expected = expectedStart[i] - (0.01 / 0.5) * m / (v.squareRoot() / (0.001 as Float).squareRoot() + 1e-8)
                if abs(parameter.value[i] - expected) > 1e-6 { XCTFail("element \(i) of \(count): \(parameter.value[i]) vs \(expected)"); break }
            }
        }
    }
}
