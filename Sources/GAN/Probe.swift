import Foundation
import Formats
import NN

/// `darkroom probe`: does a linear classifier on the features separate the labels?
public struct ProbeResult: Codable, Sendable {
    public var trainAccuracy: Double
    public var testAccuracy: Double
    public var trainCount: Int
    public var testCount: Int
    public var classes: [String]
    public var features: Int
    public var unlabeled: Int

    enum CodingKeys: String, CodingKey {
        case trainAccuracy = "train_accuracy", testAccuracy = "test_accuracy", trainCount = "train_count", testCount = "test_count"
        case classes, features, unlabeled
    }
}

public enum ProbeError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case tooFewLabels(count: Int)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): \(reason)"
        case .tooFewLabels(let count): return "only \(count) labelled rows match the features; need at least 10 with two classes"
        }
    }
}

public enum Probe {
    /// Features from PREFIX.npy / PREFIX.csv, labels from a CSV with `path,label` columns (extra
    /// columns ignored). Rows are split by a seeded shuffle.
    public static func run(features prefix: String, labels labelsPath: String, testFraction: Double = 0.2, seed: UInt64 = 0,
                           l2: Float = 1e-4, iterations: Int = 300) throws -> ProbeResult {
        let (header, data) = try Npy.read(path: prefix + ".npy")
        guard header.dtype == .float32, header.shape.count == 2 else {
            throw ProbeError.unreadable(path: prefix + ".npy", reason: "expected float32 (N, D), found \(header.dtype) \(header.shape)")
        }
        let dimension = header.shape[1]
        let features = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        guard let rowsText = try? String(contentsOfFile: prefix + ".csv", encoding: .utf8) else {
            throw ProbeError.unreadable(path: prefix + ".csv", reason: "cannot read")
        }
        let labelOf = try LabelFile(path: labelsPath).labelOf
        let classes = LabelFile.classOrder(labelOf.values)
        let classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })

        var labelled: [(row: Int, label: Int)] = []
        let featureRows = CSV.parse(rowsText).dropFirst()
        for fields in featureRows where fields.count >= 2 {
            guard let row = Int(fields[0]), row < header.shape[0], let label = labelOf[fields[1]] else { continue }
            labelled.append((row, classIndex[label]!))
        }
        guard labelled.count >= 10, Set(labelled.map(\.label)).count >= 2 else { throw ProbeError.tooFewLabels(count: labelled.count) }
        var random = SeededRandom(seed: seed)
        let order = random.permutation(labelled.count).map { labelled[$0] }
        let testCount = max(1, Int(Double(order.count) * testFraction))
        let test = Array(order.prefix(testCount)), train = Array(order.dropFirst(testCount))

        func gather(_ items: [(row: Int, label: Int)]) -> [Float] {
            var out = [Float](repeating: 0, count: items.count * dimension)
            for (index, item) in items.enumerated() {
                out.replaceSubrange(index * dimension..<(index + 1) * dimension, with: features[item.row * dimension..<(item.row + 1) * dimension])
            }
            return out
        }
        let model = LogisticRegression.fit(features: gather(train), labels: train.map(\.label), classes: classes.count, l2: l2, iterations: iterations)
        func accuracy(_ items: [(row: Int, label: Int)]) -> Double {
            let predicted = model.predict(gather(items))
            return Double(zip(predicted, items).filter { $0 == $1.label }.count) / Double(items.count)
        }
        return ProbeResult(trainAccuracy: accuracy(train), testAccuracy: accuracy(test), trainCount: train.count, testCount: test.count,
                           classes: classes, features: dimension, unlabeled: featureRows.count - labelled.count)
    }
}
