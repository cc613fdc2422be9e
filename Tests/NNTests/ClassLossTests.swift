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
}
