import Formats
import NN
import XCTest

/// The layers and losses the failure-mode remedies add: minibatch standard deviation, nearest
/// upsampling, feature matching, the Wasserstein critic's terms, and the switches a gradient
/// penalty's repeated passes need.
final class RemedyLayerTests: XCTestCase {
    func testMinibatchStdValuesAndGradients() {
        // Two groups of two images, one feature each of 2×2 pixels... here C = 1, H = W = 1.
        let layer = MinibatchStd(groupSize: 2)
        let output = layer.forward(Tensor(shape: [4, 1, 1, 1], values: [1, 3, 0, 0]))
        XCTAssertEqual(output.shape, [4, 2, 1, 1])
        XCTAssertEqual(output.values[0], 1)
        XCTAssertEqual(output.values[1], 1, accuracy: 1e-6, "std of {1, 3} is 1")
        XCTAssertEqual(output.values[3], 1, accuracy: 1e-6, "the whole group gets its statistic")
        XCTAssertEqual(output.values[5], 1e-4, accuracy: 1e-6, "std of {0, 0} is √ε")
        // A batch of 6 with group size 4 falls back to groups of 3.
        XCTAssertEqual(MinibatchStd(groupSize: 4).forward(GradientCheck.randomTensor([6, 2, 3, 3], seed: 1)).shape, [6, 3, 3, 3])
        GradientCheck.check(MinibatchStd(groupSize: 4), input: GradientCheck.randomTensor([8, 3, 2, 2], seed: 2), step: 1e-3)
        GradientCheck.check(MinibatchStd(groupSize: 4), input: GradientCheck.randomTensor([6, 2, 3, 3], seed: 3), step: 1e-3)
    }

    func testUpsampleRepeatsPixelsAndSumsGradients() {
        let layer = Upsample2x()
        let output = layer.forward(Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4]))
        XCTAssertEqual(output.shape, [1, 1, 4, 4])
        XCTAssertEqual(output.values, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        GradientCheck.check(Upsample2x(), input: GradientCheck.randomTensor([2, 3, 3, 5], seed: 4))
    }

    func testFeatureMatchingGradientMatchesFiniteDifferences() {
        let features = GradientCheck.randomTensor([5, 3, 2, 2], seed: 5)
        let realMean = (0..<12).map { Float($0) / 12 - 0.4 }
        let result = Loss.featureMatching(features, realMean: realMean)
        let fakeMean = Loss.meanRow(features)
        let expected = zip(fakeMean, realMean).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 12
        XCTAssertEqual(result.value, expected, accuracy: 1e-6)
        let analytic = result.gradient.values
        for index in [0, 7, 13, 30, 59] {
            let saved = features[index]
            features[index] = saved + 1e-3
            let plus = Double(Loss.featureMatching(features, realMean: realMean).value)
            features[index] = saved - 1e-3
            let minus = Double(Loss.featureMatching(features, realMean: realMean).value)
            features[index] = saved
            XCTAssertEqual(Double(analytic[index]), (plus - minus) / 2e-3, accuracy: 1e-4)
        }
    }

    func testCriticTermsAreSignedMeans() {
        let logits = Tensor(shape: [4, 1, 1, 1], values: [1, 2, 3, -2])
        let real = Loss.critic(logits, sign: 1), fake = Loss.critic(logits, sign: -1)
        XCTAssertEqual(real.value, -1)
        XCTAssertEqual(fake.value, 1)
        XCTAssertEqual(real.gradient.values, [-0.25, -0.25, -0.25, -0.25])
        XCTAssertEqual(Loss.critic(logits, sign: -1).gradient.values, [0.25, 0.25, 0.25, 0.25])
    }

    func testFrozenStatisticsAndReusedMasksRepeatAPass() {
        let norm = BatchNorm2d(2, name: "n")
        let input = GradientCheck.randomTensor([4, 2, 3, 3], seed: 6)
        norm.updatesRunningStatistics = false
        _ = norm.forward(input)
        XCTAssertEqual(norm.runningMean.values, [0, 0])
        XCTAssertEqual(norm.batchesTracked, 0)
        norm.updatesRunningStatistics = true
        _ = norm.forward(input)
        XCTAssertNotEqual(norm.runningMean.values, [0, 0])

        let dropout = Dropout(probability: 0.5, seed: 3)
        let ones = Tensor(shape: [64])
        ones.fill(1)
        let first = dropout.forward(ones).values
        dropout.reusesMask = true
        XCTAssertEqual(dropout.forward(ones).values, first)
        dropout.reusesMask = false
        XCTAssertNotEqual(dropout.forward(ones).values, first)
    }
}
