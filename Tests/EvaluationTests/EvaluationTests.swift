import Formats
import NN
import XCTest
@testable import Evaluation

/// Toy images in [-1, 1], C = 1: discs (mode 0) or horizontal bars (mode 1) at random places on a dark ground.
func shapes(_ count: Int, size: Int = 16, modes: [Int] = [0, 1], noise: Float = 0, seed: UInt64) -> [Float] {
    var random = SeededRandom(seed: seed)
    var out = [Float](repeating: -1, count: count * size * size)
    for n in 0..<count {
        let mode = modes[Int(random.next() % UInt64(modes.count))]
        let cx = Float(size) * (0.3 + 0.4 * random.nextUniform()), cy = Float(size) * (0.3 + 0.4 * random.nextUniform())
        let radius = Float(size) * (0.15 + 0.1 * random.nextUniform())
        for y in 0..<size {
            for x in 0..<size {
                let dx = Float(x) - cx, dy = Float(y) - cy
                let inside = mode == 0 ? dx * dx + dy * dy < radius * radius : abs(dy) < radius / 2 && abs(dx) < 2 * radius
                var value: Float = inside ? 0.8 : -0.8
                if noise > 0 { value += noise * random.nextNormal() }
                out[n * size * size + y * size + x] = min(max(value, -1), 1)
            }
        }
    }
    return out
}

final class LinearAlgebraTests: XCTestCase {
    /// Q diag(λ) Qᵀ with a random orthogonal Q (Gram–Schmidt on Gaussian columns).
    func symmetric(eigenvalues: [Double], seed: UInt64) -> [Double] {
        let n = eigenvalues.count
        var random = SeededRandom(seed: seed)
        var q = (0..<(n * n)).map { _ in Double(random.nextNormal()) }
        for j in 0..<n {
            for k in 0..<j {
                var dot = 0.0
                for i in 0..<n { dot += q[i * n + j] * q[i * n + k] }
                for i in 0..<n { q[i * n + j] -= dot * q[i * n + k] }
            }
            var norm = 0.0
            for i in 0..<n { norm += q[i * n + j] * q[i * n + j] }
            for i in 0..<n { q[i * n + j] /= norm.squareRoot() }
        }
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += q[i * n + k] * eigenvalues[k] * q[j * n + k] } } }
        return a
    }

    func testEigenvaluesOfKnownSpectra() {
        for n in [1, 2, 3, 7, 40] {
            var random = SeededRandom(seed: UInt64(n))
            // Includes repeated and zero eigenvalues.
            var values = (0..<n).map { _ in Double(random.nextUniform() * 10 - 3) }
            if n > 3 { values[1] = values[0]; values[2] = 0 }
            let found = SymmetricMatrix.eigenvalues(symmetric(eigenvalues: values, seed: UInt64(n) + 100), n: n)
            for (a, b) in zip(found, values.sorted()) { XCTAssertEqual(a, b, accuracy: 1e-9, "n = \(n)") }
        }
    }

    func testCholeskyReconstructs() {
        let n = 6
        let a = symmetric(eigenvalues: [0.5, 1, 2, 3, 4, 9], seed: 3)
        let l = SymmetricMatrix.cholesky(a, n: n)
        for i in 0..<n {
            for j in 0..<n {
                var sum = 0.0
                for k in 0..<n { sum += l[i * n + k] * l[j * n + k] }
                XCTAssertEqual(sum, a[i * n + j], accuracy: 1e-12)
                if j > i { XCTAssertEqual(l[i * n + j], 0) }
            }
        }
    }

    func testFrechetDistanceClosedForms() {
        // Equal Gaussians: 0.
        let a = Gaussian(mean: [1, 2], covariance: symmetric(eigenvalues: [1, 3], seed: 1))
        XCTAssertEqual(Frechet.distance(a, a), 0, accuracy: 1e-5)
        // Diagonal: ‖Δμ‖² + Σ (√a − √b)².
        let d1 = Gaussian(mean: [0, 0, 0], covariance: [4, 0, 0, 0, 1, 0, 0, 0, 9])
        let d2 = Gaussian(mean: [1, 0, 2], covariance: [1, 0, 0, 0, 1, 0, 0, 0, 16])
        XCTAssertEqual(Frechet.distance(d1, d2), 5 + 1 + 0 + 1, accuracy: 1e-4)  // the ridge
        // 2 × 2, not commuting: tr √(AB) = √(tr AB + 2√(det A det B)).
        let p = symmetric(eigenvalues: [0.5, 2], seed: 7), q = symmetric(eigenvalues: [1, 5], seed: 8)
        let traceAB = p[0] * q[0] + p[1] * q[2] + p[2] * q[1] + p[3] * q[3]
        let root = (traceAB + 2 * (1.0 * 5.0).squareRoot()).squareRoot()
        let expected = (p[0] + p[3]) + (q[0] + q[3]) - 2 * root
        XCTAssertEqual(Frechet.distance(Gaussian(mean: [0, 0], covariance: p), Gaussian(mean: [0, 0], covariance: q)), expected, accuracy: 1e-5)
        // Symmetric in its arguments.
        XCTAssertEqual(Frechet.distance(Gaussian(mean: [0, 0], covariance: q), Gaussian(mean: [0, 0], covariance: p)), expected, accuracy: 1e-5)
    }

    func testGaussianMatchesDirectCovariance() {
        var random = SeededRandom(seed: 5)
        let n = 50, d = 4
        let x = (0..<(n * d)).map { i in random.nextNormal() + Float(i % d) }
        let g = Gaussian(features: x, dimension: d)
        for i in 0..<d {
            let mean = (0..<n).reduce(0.0) { $0 + Double(x[$1 * d + i]) } / Double(n)
            XCTAssertEqual(g.mean[i], mean, accuracy: 1e-5)
            for j in 0..<d {
                let meanJ = (0..<n).reduce(0.0) { $0 + Double(x[$1 * d + j]) } / Double(n)
                let cov = (0..<n).reduce(0.0) { $0 + (Double(x[$1 * d + i]) - mean) * (Double(x[$1 * d + j]) - meanJ) } / Double(n - 1)
                XCTAssertEqual(g.covariance[i * d + j], cov, accuracy: 1e-4)
            }
        }
    }

    func testKthNeighbourDistancesMatchBruteForce() {
        var random = SeededRandom(seed: 9)
        let n = 37, d = 5, k = 3
        let points = (0..<(n * d)).map { _ in random.nextNormal() }
        let found = NearestNeighbours.kthNeighbourDistances(points, dimension: d, k: k, block: 8)
        for i in 0..<n {
            let distances = (0..<n).filter { $0 != i }.map { j in
                (0..<d).reduce(Float(0)) { $0 + (points[i * d + $1] - points[j * d + $1]) * (points[i * d + $1] - points[j * d + $1]) }.squareRoot()
            }.sorted()
            XCTAssertEqual(found[i], distances[k - 1], accuracy: 1e-4)
        }
    }
}

final class MetricTests: XCTestCase {
    func testPrecisionAndRecallSeeMissingModesAndOutliers() {
        var random = SeededRandom(seed: 2)
        // Real: two clusters in 2-D; synthetic A: both; B: one cluster only; C: far away.
        func cluster(_ count: Int, _ cx: Float) -> [Float] { (0..<count).flatMap { _ in [cx + 0.3 * random.nextNormal(), 0.3 * random.nextNormal()] } }
        let real = cluster(200, -3) + cluster(200, 3)
        let both = cluster(200, -3) + cluster(200, 3)
        let one = cluster(400, 3)
        let far = cluster(400, 30)
        let full = ManifoldMetrics.precisionRecall(real: real, synthetic: both, dimension: 2)
        XCTAssertGreaterThan(full.precision, 0.9)
        XCTAssertGreaterThan(full.recall, 0.9)
        let dropped = ManifoldMetrics.precisionRecall(real: real, synthetic: one, dimension: 2)
        XCTAssertGreaterThan(dropped.precision, 0.9)
        XCTAssertLessThan(dropped.recall, 0.55)
        let wrong = ManifoldMetrics.precisionRecall(real: real, synthetic: far, dimension: 2)
        XCTAssertEqual(wrong.precision, 0)
        XCTAssertEqual(wrong.recall, 0)
    }

    func testModeBinsCountMissingModes() {
        let size = 16, sample = size * size
        let real = shapes(600, modes: [0, 1], seed: 1)
        let bins = ModeBins(real: real, dimension: sample, bins: 10, seed: 3)
        XCTAssertEqual(bins.realCounts.reduce(0, +), 600)
        let faithful = bins.compare(synthetic: shapes(600, modes: [0, 1], seed: 2))
        let discsOnly = bins.compare(synthetic: shapes(600, modes: [0], seed: 2))
        XCTAssertLessThanOrEqual(faithful.ndb, 2)
        XCTAssertGreaterThanOrEqual(discsOnly.ndb, 5)
        XCTAssertEqual(faithful.bins.reduce(0) { $0 + $1.syntheticShare }, 1, accuracy: 1e-9)
        XCTAssertEqual(discsOnly.bins.filter(\.significant).count, discsOnly.ndb)
        // Deterministic: the same seed gives the same bins.
        XCTAssertEqual(ModeBins(real: real, dimension: sample, bins: 10, seed: 3).centres, bins.centres)
    }

    func testFeatureSpaceIsFixedAndSeesStructure() {
        let a = FeatureSpace(imageSize: 16, channels: 1), b = FeatureSpace(imageSize: 16, channels: 1)
        XCTAssertEqual(a.dimension, 32 + 64 + 128)
        let images = shapes(8, seed: 4)
        XCTAssertEqual(a.features(images), b.features(images))
        XCTAssertEqual(FeatureSpace(imageSize: 64, channels: 3).dimension, 32 + 64 + 128 + 256 + 256)
        // Batching does not change features.
        XCTAssertEqual(a.features(images, batch: 3), a.features(images))
    }

    /// Worse generators get worse figures: the real distribution with more and more noise, and
    /// one that draws a single mode.
    func testFiguresRankDegradedImages() {
        var options = EvaluationOptions()
        options.count = 400
        options.bins = 10
        let reference = RealReference(images: shapes(400, seed: 1), imageSize: 16, channels: 1, options: options)
        let levels: [Float] = [0, 0.2, 1.0]
        let results = levels.map { SampleEvaluation.measure(shapes(400, noise: $0, seed: 2), against: reference).figures }
        XCTAssertLessThan(results[0].fd, results[1].fd)
        XCTAssertLessThan(results[1].fd, results[2].fd)
        XCTAssertLessThan(results[0].twoSampleAccuracy!, 0.65, "same distribution should be hard to tell apart")
        XCTAssertGreaterThan(results[2].twoSampleAccuracy!, 0.7)
        XCTAssertLessThan(results[0].twoSampleAccuracy!, results[2].twoSampleAccuracy!)
        XCTAssertGreaterThan(results[0].precision, results[2].precision)
        let oneMode = SampleEvaluation.measure(shapes(400, modes: [1], seed: 2), against: reference).figures
        XCTAssertGreaterThan(oneMode.fd, results[0].fd)
        XCTAssertLessThan(oneMode.recall, results[0].recall)
        XCTAssertGreaterThan(oneMode.ndb, results[0].ndb)
        XCTAssertEqual(results[0].count, 400)
        XCTAssertEqual(results[0].featureSpace, FeatureSpace.version)
    }
}

final class DownstreamClassifierTests: XCTestCase {
    /// Horizontal (class 0) or vertical (class 1) stripes under noise, 32 px gray.
    private func stripes(_ count: Int, seed: UInt64) -> (images: [Float], labels: [Int]) {
        var random = SeededRandom(seed: seed)
        var images: [Float] = [], labels: [Int] = []
        for n in 0..<count {
            let label = n % 2, phase = random.nextInt(in: 0...3)
            for y in 0..<32 {
                for x in 0..<32 {
                    let bright = ((label == 0 ? y : x) + phase) % 8 < 4
                    let noise: Float = 0.3 * random.nextNormal()
                    images.append((bright ? 0.8 : -0.8) + noise)
                }
            }
            labels.append(label)
        }
        return (images, labels)
    }

    /// The utility report's classifier learns a separable problem, alone and with each batch half
    /// from a second set (four images of one class, mixed with a set of both, teach both).
    func testLearnsSeparableClassesAloneAndMixed() {
        var recipe = DownstreamClassifier.Recipe()
        recipe.minimumSteps = 60
        recipe.batch = 16
        recipe.width = 8
        let train = stripes(64, seed: 1), test = stripes(40, seed: 2)
        let alone = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        alone.train(images: train.images, labels: train.labels)
        XCTAssertGreaterThanOrEqual(alone.accuracy(images: test.images, labels: test.labels), 0.95)
        // Four images of class 0 only: class 1 can be learnt from the second set alone.
        let pairs = stripes(8, seed: 3)
        var few: [Float] = []
        for image in [0, 2, 4, 6] { few += pairs.images[image * 1024..<(image + 1) * 1024] }
        let mixed = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        mixed.train(images: few, labels: [0, 0, 0, 0], mixedWith: train)
        XCTAssertGreaterThanOrEqual(mixed.accuracy(images: test.images, labels: test.labels), 0.95)
        let quarter = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        quarter.train(images: few, labels: [0, 0, 0, 0], mixedWith: train, share: 0.25)
        XCTAssertGreaterThanOrEqual(quarter.accuracy(images: test.images, labels: test.labels), 0.95, "a quarter of each batch is enough")
        XCTAssertEqual(recipe.steps(for: 64), 80, "20 passes over 64 images in batches of 16")
    }

    /// The cosine schedule decays the learning rate from its start to 0 over the steps; training
    /// follows it (other weights than at the constant rate, from the same seed) and still learns.
    func testCosineScheduleDecaysToZeroAndStillLearns() {
        var recipe = DownstreamClassifier.Recipe()
        (recipe.minimumSteps, recipe.batch, recipe.width) = (60, 16, 8)
        XCTAssertEqual(recipe.learningRate(step: 30, of: 60), 1e-3)
        let train = stripes(64, seed: 1), test = stripes(40, seed: 2)
        let constant = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        constant.train(images: train.images, labels: train.labels)
        recipe.schedule = .cosine
        XCTAssertEqual(recipe.learningRate(step: 0, of: 60), 1e-3)
        XCTAssertEqual(recipe.learningRate(step: 30, of: 60), 5e-4, accuracy: 1e-9)
        XCTAssertLessThan(recipe.learningRate(step: 59, of: 60), 1e-5)
        let cosine = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        cosine.train(images: train.images, labels: train.labels)
        XCTAssertNotEqual(cosine.network.parameters.map(\.value.values), constant.network.parameters.map(\.value.values))
        XCTAssertGreaterThanOrEqual(cosine.accuracy(images: test.images, labels: test.labels), 0.95)
    }

    /// Soft targets replace a set's labels in the loss: one-hot targets train the very same weights
    /// as the labels, and targets that swap the classes teach the swapped classes.
    func testSoftTargetsReplaceTheLabels() {
        var recipe = DownstreamClassifier.Recipe()
        (recipe.minimumSteps, recipe.batch, recipe.width) = (60, 16, 8)
        let train = stripes(64, seed: 1), test = stripes(40, seed: 2), few = stripes(4, seed: 3)
        func oneHot(_ labels: [Int]) -> [Float] { labels.flatMap { $0 == 0 ? [Float(1), 0] : [0, 1] } }
        let byLabels = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        byLabels.train(images: few.images, labels: few.labels, mixedWith: train)
        let byTargets = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        byTargets.train(images: few.images, labels: few.labels, mixedWith: train, mixedTargets: oneHot(train.labels))
        XCTAssertEqual(byTargets.network.parameters.map(\.value.values), byLabels.network.parameters.map(\.value.values))
        let swapped = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        swapped.train(images: train.images, labels: train.labels, targets: oneHot(train.labels.map { 1 - $0 }))
        XCTAssertLessThanOrEqual(swapped.accuracy(images: test.images, labels: test.labels), 0.05)
    }

    /// FixMatch learns the stripes from two labelled images of each class and many unlabelled
    /// ones; with a threshold no prediction reaches, its unlabelled targets are all masked.
    func testFixMatchLearnsFromFewLabelsAndMasksUnsureTargets() {
        var recipe = DownstreamClassifier.Recipe()
        recipe.batch = 8
        recipe.width = 8
        var fixMatch = FixMatchRecipe()
        fixMatch.steps = 80
        let few = stripes(4, seed: 1), unlabelled = stripes(128, seed: 2), test = stripes(40, seed: 3)
        let classifier = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        var confident: [Double] = []
        classifier.trainSemiSupervised(images: few.images, labels: few.labels, unlabelled: unlabelled.images, fixMatch: fixMatch) { confident.append($1) }
        XCTAssertEqual(confident.count, 80)
        XCTAssertGreaterThan(confident.last!, 0.5, "most unlabelled images get a target once the classes are learnt")
        XCTAssertGreaterThanOrEqual(classifier.accuracy(images: test.images, labels: test.labels), 0.95)
        let probabilities = classifier.probabilities(test.images)
        XCTAssertEqual(probabilities.count, 40)
        for row in probabilities { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5) }

        // FlexMatch's class thresholds learn the same, and start with every target (its warm-up).
        var flexible = fixMatch
        flexible.thresholds = .flexmatch
        var flexibleConfident: [Double] = []
        let curriculum = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        curriculum.trainSemiSupervised(images: few.images, labels: few.labels, unlabelled: unlabelled.images, fixMatch: flexible) {
            flexibleConfident.append($1)
        }
        XCTAssertEqual(flexibleConfident.first, 1)
        XCTAssertGreaterThanOrEqual(curriculum.accuracy(images: test.images, labels: test.labels), 0.95)

        // FixMatch's RandAugment as the strong view learns them too.
        var randAugmented = fixMatch
        randAugmented.strong = .randaugment
        let strong = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
        strong.trainSemiSupervised(images: few.images, labels: few.labels, unlabelled: unlabelled.images, fixMatch: randAugmented)
        XCTAssertGreaterThanOrEqual(strong.accuracy(images: test.images, labels: test.labels), 0.95)

        fixMatch.threshold = 1.5
        fixMatch.steps = 10
        var none: [Double] = []
        DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
            .trainSemiSupervised(images: few.images, labels: few.labels, unlabelled: unlabelled.images, fixMatch: fixMatch) { none.append($1) }
        XCTAssertEqual(none, [Double](repeating: 0, count: 10))
    }

    /// Aligned to shares the labels do not have, FixMatch's targets follow them: with every
    /// unlabelled image's target moved towards class 0, the classifier calls more of them class 0.
    func testFixMatchAlignedToOtherSharesCallsMoreOfTheFavouredClass() {
        var recipe = DownstreamClassifier.Recipe()
        (recipe.batch, recipe.width) = (8, 8)
        var fixMatch = FixMatchRecipe()
        (fixMatch.steps, fixMatch.threshold) = (40, 0.5)
        let few = stripes(4, seed: 1), unlabelled = stripes(128, seed: 2)
        func calledZero(_ alignment: [Float]?) -> Int {
            fixMatch.alignment = alignment
            let classifier = DownstreamClassifier(imageSize: 32, channels: 1, classes: 2, recipe: recipe)
            classifier.trainSemiSupervised(images: few.images, labels: few.labels, unlabelled: unlabelled.images, fixMatch: fixMatch)
            return classifier.predict(unlabelled.images).filter { $0 == 0 }.count
        }
        let plain = calledZero(nil), aligned = calledZero([0.99, 0.01])
        // Measured: 84 against 64 (the stripes are half of each class).
        XCTAssertGreaterThanOrEqual(aligned, plain + 10, "\(aligned) against \(plain) of 128")
    }

    /// FlexMatch's bar: 0 before any image is selected, then each class's count against the most
    /// selected class's, or against the not-yet-selected images while they are more.
    func testClassThresholdsFollowEachClassesSelectedImages() {
        var thresholds = ClassThresholds(threshold: 0.9, images: 10, classes: 3)
        XCTAssertEqual((0..<3).map { thresholds.threshold(of: $0) }, [0, 0, 0], "the warm-up: every target counts")
        thresholds.record(image: 0, label: 1, confidence: 0.95)
        thresholds.record(image: 1, label: 1, confidence: 0.99)
        thresholds.record(image: 2, label: 2, confidence: 0.5)
        // 2 of class 1 against 8 unselected: β = 0.25, τ · β / (2 − β).
        XCTAssertEqual(thresholds.threshold(of: 1), 0.9 * 0.25 / 1.75, accuracy: 1e-6)
        XCTAssertEqual(thresholds.threshold(of: 2), 0, "an image under the fixed bar is not selected")
        for image in 2..<8 { thresholds.record(image: image, label: image < 6 ? 0 : 2, confidence: 0.97) }
        // counts [4, 2, 2], 0 unselected: β = [1, 0.5, 0.5].
        XCTAssertEqual(thresholds.threshold(of: 0), 0.9, accuracy: 1e-6)
        XCTAssertEqual(thresholds.threshold(of: 2), 0.9 * 0.5 / 1.5, accuracy: 1e-6)
        // An image's latest class replaces its earlier one.
        thresholds.record(image: 0, label: 2, confidence: 0.96)
        XCTAssertEqual(thresholds.threshold(of: 1), 0.9 * 0.25 / 1.75, accuracy: 1e-6)
        XCTAssertEqual(thresholds.threshold(of: 2), 0.9 * 0.75 / 1.25, accuracy: 1e-6)
    }

    /// EM recovers a folder's class shares from a calibrated classifier's probabilities: images
    /// drawn in shares [0.7, 0.2, 0.1] from three classes' known likelihoods over four kinds of
    /// image, the classifier's posteriors those of a uniform training prior.
    func testClassPriorEstimateRecoversTheSharesOfAShiftedFolder() {
        let likelihood: [[Double]] = [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.1, 0.1, 0.2, 0.6]]  // [class][kind]
        let truth = [0.7, 0.2, 0.1], uniform = [Double](repeating: 1.0 / 3, count: 3)
        var probabilities: [[Float]] = []
        for kind in 0..<4 {
            let count = Int((1000 * (0..<3).reduce(0.0) { $0 + truth[$1] * likelihood[$1][kind] }).rounded())
            let posterior = (0..<3).map { likelihood[$0][kind] / (0..<3).reduce(0.0) { $0 + likelihood[$1][kind] } }
            probabilities += [[Float]](repeating: posterior.map(Float.init), count: count)
        }
        let estimate = ClassPrior.estimate(probabilities, trainedOn: uniform)
        for (found, share) in zip(estimate, truth) { XCTAssertEqual(found, share, accuracy: 0.01) }
        // The plain mean of the posteriors, EM's first step, is pulled towards uniform.
        let mean = (0..<3).map { k in probabilities.reduce(0.0) { $0 + Double($1[k]) } / Double(probabilities.count) }
        XCTAssertGreaterThan(abs(mean[0] - 0.7), 0.1)
        XCTAssertEqual(ClassPrior.frequencies([0, 0, 1, 2], classes: 4), [0.5, 0.25, 0.25, 0])
        // Posteriors of a classifier trained on [0.5, 0.25, 0.25]: the same folder, the same shares.
        let skewed = [0.5, 0.25, 0.25]
        let shifted = probabilities.map { p in
            let scaled = (0..<3).map { Double(p[$0]) * skewed[$0] * 3 }
            return scaled.map { Float($0 / scaled.reduce(0, +)) }
        }
        for (found, share) in zip(ClassPrior.estimate(shifted, trainedOn: skewed), truth) { XCTAssertEqual(found, share, accuracy: 0.01) }
    }

    /// Distribution alignment gives an image predicted as the network predicts on average the
    /// target's shares, and moves every prediction by target over mean; its mean starts at the
    /// first batch's and then follows about the last 128.
    func testDistributionAlignmentScalesByTargetOverTheRunningMean() {
        var alignment = DistributionAlignment(target: [0.6, 0.3, 0.1])
        alignment.record([[0.2, 0.5, 0.3], [0.4, 0.3, 0.3]])
        XCTAssertEqual(alignment.mean, [0.3, 0.4, 0.3])
        for (aligned, share) in zip(alignment.align([0.3, 0.4, 0.3]), [Float(0.6), 0.3, 0.1]) { XCTAssertEqual(aligned, share, accuracy: 1e-6) }
        let aligned = alignment.align([0.1, 0.1, 0.8])
        let scaled: [Float] = [0.1 * 0.6 / 0.3, 0.1 * 0.3 / 0.4, 0.8 * 0.1 / 0.3], total = scaled.reduce(0, +)
        for (value, expected) in zip(aligned, scaled) { XCTAssertEqual(value, expected / total, accuracy: 1e-6) }
        alignment.record([[1, 0, 0]])
        XCTAssertEqual(alignment.mean[0], 0.5 * 0.3 + 0.5 * 1, accuracy: 1e-6, "the second batch weighs 1/2")
        for _ in 0..<1000 { alignment.record([[0, 0, 1]]) }
        XCTAssertEqual(alignment.mean[2], 1, accuracy: 1e-3, "old batches fade")
        XCTAssertGreaterThan(alignment.mean[0], 0, "at 127/128 a step, not at once")
    }
}
