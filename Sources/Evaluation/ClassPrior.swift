import Foundation

/// A folder's class proportions when its labelled images do not share them (label shift): a user
/// labels 20 of each class, while the folder holds 25 times more of one class than of another. A
/// classifier trained on the labels predicts as if every class were as common as in them.
public enum ClassPrior {
    /// The classes' shares among the labels.
    public static func frequencies(_ labels: [Int], classes: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: classes)
        for label in labels { counts[label] += 1 }
        return counts.map { $0 / Double(max(labels.count, 1)) }
    }

    /// The unlabelled images' class shares by Saerens, Latinne & Decaestecker (2002): EM on the
    /// classifier's probabilities, each image's reweighted by the current estimate over the
    /// training prior (E), the estimate their mean (M), from the training prior until it moves
    /// less than `tolerance`. A class that no image could be keeps its share at 0.
    public static func estimate(_ probabilities: [[Float]], trainedOn prior: [Double], iterations: Int = 1000,
                                tolerance: Double = 1e-8) -> [Double] {
        precondition(!probabilities.isEmpty && probabilities.allSatisfy { $0.count == prior.count }, "K probabilities per image")
        var estimate = prior
        for _ in 0..<iterations {
            let ratio = prior.indices.map { prior[$0] > 0 ? estimate[$0] / prior[$0] : 0 }
            var next = [Double](repeating: 0, count: prior.count)
            for p in probabilities {
                // p(y | x) under the estimate: p · estimate / prior, normalised (Bayes' rule).
                var total = 0.0
                for k in ratio.indices { total += Double(p[k]) * ratio[k] }
                guard total > 0 else { continue }
                for k in ratio.indices { next[k] += Double(p[k]) * ratio[k] / total }
            }
            next = next.map { $0 / Double(probabilities.count) }
            let moved = zip(next, estimate).map { abs($0 - $1) }.max()!
            estimate = next
            if moved < tolerance { break }
        }
        return estimate
    }
}
