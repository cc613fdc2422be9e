import Foundation

/// Multinomial logistic regression with L2, for probing features: features are standardised with
/// the training rows' mean and deviation, then W [K, D] and b [K] minimise
///   mean cross-entropy(softmax(x·Wᵀ + b), y) + (λ/2)·‖W‖²
/// by full-batch Adam; both matrix products run on sgemm.
public struct LogisticRegression {
    public var classes: Int
    public var dimension: Int
    public var weights: [Float]
    public var bias: [Float]
    var mean: [Float]
    var scale: [Float]

    /// `features` N × D row-major, `labels` in 0..<classes.
    public static func fit(features: [Float], labels: [Int], classes: Int, l2: Float = 1e-4, iterations: Int = 300,
                           learningRate: Float = 0.05) -> LogisticRegression {
        let count = labels.count, dimension = features.count / max(count, 1)
        var mean = [Float](repeating: 0, count: dimension), scale = [Float](repeating: 0, count: dimension)
        for n in 0..<count { for d in 0..<dimension { mean[d] += features[n * dimension + d] } }
        for d in 0..<dimension { mean[d] /= Float(count) }
        for n in 0..<count { for d in 0..<dimension { let v = features[n * dimension + d] - mean[d]; scale[d] += v * v } }
        for d in 0..<dimension { let deviation = (scale[d] / Float(count)).squareRoot(); scale[d] = deviation > 1e-6 ? 1 / deviation : 0 }
        var model = LogisticRegression(classes: classes, dimension: dimension, weights: [Float](repeating: 0, count: classes * dimension),
                                       bias: [Float](repeating: 0, count: classes), mean: mean, scale: scale)
        let x = model.standardised(features, count: count)
        let parameters = Parameter(name: "w", shape: [classes * dimension + classes])
        let adam = Adam(parameters: [parameters], learningRate: learningRate, beta1: 0.9, beta2: 0.999)
        var logits = [Float](repeating: 0, count: count * classes)
        for _ in 0..<iterations {
            model.logits(x, count: count, into: &logits)
            // G = (softmax − onehot) / N, then dW = Gᵀ·X + λW, db = Σ G.
            for n in 0..<count {
                let row = n * classes
                var top = -Float.infinity
                for k in 0..<classes { top = max(top, logits[row + k]) }
                var total: Float = 0
                for k in 0..<classes { logits[row + k] = expf(logits[row + k] - top); total += logits[row + k] }
                for k in 0..<classes { logits[row + k] = (logits[row + k] / total - (labels[n] == k ? 1 : 0)) / Float(count) }
            }
            let gradient = parameters.gradient
            logits.withUnsafeBufferPointer { g in
                x.withUnsafeBufferPointer { features in
                    sgemm(transposeA: true, transposeB: false, m: classes, n: dimension, k: count, alpha: 1, a: g.baseAddress!, lda: classes,
                          b: features.baseAddress!, ldb: dimension, beta: 0, c: gradient.data, ldc: dimension)
                }
            }
            for i in 0..<(classes * dimension) { gradient[i] += l2 * model.weights[i] }
            for k in 0..<classes {
                var sum: Float = 0
                for n in 0..<count { sum += logits[n * classes + k] }
                gradient[classes * dimension + k] = sum
            }
            adam.step()  // parameters.value starts at zero, as the model does, and is copied out after each step
            for i in 0..<(classes * dimension) { model.weights[i] = parameters.value[i] }
            for k in 0..<classes { model.bias[k] = parameters.value[classes * dimension + k] }
        }
        return model
    }

    func standardised(_ features: [Float], count: Int) -> [Float] {
        var x = features
        for n in 0..<count { for d in 0..<dimension { x[n * dimension + d] = (x[n * dimension + d] - mean[d]) * scale[d] } }
        return x
    }

    func logits(_ x: [Float], count: Int, into logits: inout [Float]) {
        x.withUnsafeBufferPointer { features in
            weights.withUnsafeBufferPointer { w in
                logits.withUnsafeMutableBufferPointer { out in
                    sgemm(transposeA: false, transposeB: true, m: count, n: classes, k: dimension, alpha: 1, a: features.baseAddress!, lda: dimension,
                          b: w.baseAddress!, ldb: dimension, beta: 0, c: out.baseAddress!, ldc: classes)
                }
            }
        }
        for n in 0..<count { for k in 0..<classes { logits[n * classes + k] += bias[k] } }
    }

    /// The most likely class of each row of `features` (N × D).
    public func predict(_ features: [Float]) -> [Int] {
        let count = features.count / dimension
        var scores = [Float](repeating: 0, count: count * classes)
        logits(standardised(features, count: count), count: count, into: &scores)
        return (0..<count).map { n in (0..<classes).max { scores[n * classes + $0] < scores[n * classes + $1] }! }
    }
}
