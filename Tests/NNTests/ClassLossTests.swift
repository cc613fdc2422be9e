import Formats
import NN
import XCTest

final class ClassLossTests: XCTestCase {
    /// Softmax cross-entropy: its value by the definition, its gradient against central differences,
    /// unlabelled rows (−1) contributing nothing, and the weight scaling both.
    func testSoftmaxCrossEntropyMatchesItsDefinitionAndDifferences() {
        var random = SeededRandom(seed: 3)
        let logits = Tensor(shape: [4, 5, 1, 1], values: (0..<20).map { _ in random.nextNormal() * 2 })
        let labels = [2, -1, 0, 4]
        let result = Loss.softmaxCrossEntropy(logits, labels: labels, weight: 0.5)
        var expected = 0.0
        for (row, label) in labels.enumerated() where label >= 0 {
            let values = (0..<5).map { Double(logits[row * 5 + $0]) }
            let sum = values.map(exp).reduce(0, +)
            expected -= log(exp(values[label]) / sum)
        }
        XCTAssertEqual(Double(result.value), 0.5 * expected / 4, accuracy: 1e-5)
        for j in 5..<10 { XCTAssertEqual(result.gradient[j], 0, "an unlabelled row has no gradient") }
        let gradient = result.gradient.values
        for index in [0, 2, 11, 12, 19] {
            let saved = logits[index]
            logits[index] = saved + 1e-2
            let plus = Loss.softmaxCrossEntropy(logits, labels: labels, weight: 0.5).value
            logits[index] = saved - 1e-2
            let minus = Loss.softmaxCrossEntropy(logits, labels: labels, weight: 0.5).value
            logits[index] = saved
            XCTAssertEqual(gradient[index], (plus - minus) / 2e-2, accuracy: 1e-3)
        }
        XCTAssertEqual(Loss.softmax(UnsafeBufferPointer(start: [Float(1000), 1000].withUnsafeBufferPointer { $0.baseAddress }, count: 2)), [0.5, 0.5],
                       "large logits stay finite")
    }

    func testSoftTargetCrossEntropyValueGradientAndOneHotCase() {
        var random = SeededRandom(seed: 4)
        let logits = Tensor(shape: [3, 4, 1, 1], values: (0..<12).map { _ in random.nextNormal() * 2 })
        let targets: [Float] = [0.7, 0.2, 0.1, 0, 0.25, 0.25, 0.25, 0.25, 0, 0, 1, 0]
        let result = Loss.softmaxCrossEntropy(logits, targets: targets)
        var expected = 0.0
        for row in 0..<3 {
            let values = (0..<4).map { Double(logits[row * 4 + $0]) }
            let sum = values.map(exp).reduce(0, +)
            for j in 0..<4 { expected -= Double(targets[row * 4 + j]) * log(exp(values[j]) / sum) }
        }
        XCTAssertEqual(Double(result.value), expected / 3, accuracy: 1e-5)
        let gradient = result.gradient.values
        for index in 0..<12 {
            let saved = logits[index]
            logits[index] = saved + 1e-2
            let plus = Loss.softmaxCrossEntropy(logits, targets: targets).value
            logits[index] = saved - 1e-2
            let minus = Loss.softmaxCrossEntropy(logits, targets: targets).value
            logits[index] = saved
            XCTAssertEqual(gradient[index], (plus - minus) / 2e-2, accuracy: 1e-3, "logit \(index)")
        }
        // One-hot rows are the hard-label loss.
        let oneHot: [Float] = [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
        let hard = Loss.softmaxCrossEntropy(logits, labels: [1, 0, 3]), soft = Loss.softmaxCrossEntropy(logits, targets: oneHot)
        XCTAssertEqual(soft.value, hard.value, accuracy: 1e-6)
        for (a, b) in zip(soft.gradient.values, hard.gradient.values) { XCTAssertEqual(a, b, accuracy: 1e-7) }
    }
}
