import Formats
import NN
import XCTest

/// Finite-difference checks. The loss is L = Σ r·f(x) for a fixed random r, so backward(r) must
/// give ∂L/∂x and ∂L/∂θ; each is compared with (L(x + h) − L(x − h)) / 2h on sampled coordinates.
enum GradientCheck {
    static func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, awayFromZero: Float = 0) -> Tensor {
        var random = SeededRandom(seed: seed)
        let tensor = Tensor(shape: shape)
        for i in 0..<tensor.count {
            var value = (random.nextUniform() * 2 - 1) * scale
            if abs(value) < awayFromZero { value += value < 0 ? -awayFromZero : awayFromZero }
            tensor[i] = value
        }
        return tensor
    }

    static func loss(_ layer: Layer, _ input: Tensor, _ weights: Tensor) -> Double {
        let output = layer.forward(input)
        var total = 0.0
        for i in 0..<output.count { total += Double(output[i]) * Double(weights[i]) }
        return total
    }

    static func relativeError(_ a: Double, _ b: Double) -> Double {
        abs(a - b) / max(abs(a), abs(b), 1e-3)
    }

    /// Checks input and parameter gradients of `layer` at `input`.
    static func check(_ layer: Layer, input: Tensor, step: Float = 1e-2, tolerance: Double = 1e-2, samples: Int = 24,
                      file: StaticString = #filePath, line: UInt = #line) {
        let output = layer.forward(input)
        let weights = randomTensor(output.shape, seed: 99)
        for parameter in layer.parameters { parameter.zeroGradient() }
        _ = layer.forward(input)
        let analyticInput = layer.backward(weights)?.clone()
        var random = SeededRandom(seed: 5)

        func numeric(_ tensor: Tensor, _ index: Int) -> Double {
            let saved = tensor[index]
            tensor[index] = saved + step
            let plus = loss(layer, input, weights)
            tensor[index] = saved - step
            let minus = loss(layer, input, weights)
            tensor[index] = saved
            return (plus - minus) / Double(2 * step)
        }

        if let analyticInput {
            for _ in 0..<min(samples, input.count) {
                let index = Int(random.next() % UInt64(input.count))
                let expected = numeric(input, index)
                XCTAssertLessThan(relativeError(Double(analyticInput[index]), expected), tolerance,
                                  "input[\(index)]: analytic \(analyticInput[index]) numeric \(expected)", file: file, line: line)
            }
        }
        for parameter in layer.parameters {
            let analytic = parameter.gradient.clone()
            for _ in 0..<min(samples, parameter.value.count) {
                let index = Int(random.next() % UInt64(parameter.value.count))
                let expected = numeric(parameter.value, index)
                XCTAssertLessThan(relativeError(Double(analytic[index]), expected), tolerance,
                                  "\(parameter.name)[\(index)]: analytic \(analytic[index]) numeric \(expected)", file: file, line: line)
            }
        }
    }
}
