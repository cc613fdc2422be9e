import Dataset
import Foundation
import Formats

public enum LabelError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case tooFewLabels(path: String, dataset: String, matched: Int, classes: Int)
    case unknownClass(path: String, label: String, classes: [String])
    case conflictingLabels(path: String, image: String, first: (label: String, row: Int), second: (label: String, row: Int))

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): \(reason)"
        case .tooFewLabels(let path, let dataset, let matched, let classes):
            return "\(path): \(matched) labelled images of \(classes) classes match \(dataset)'s index.csv; at least two classes are needed"
        case .unknownClass(let path, let label, let classes):
            return "\(path): label \"\(label)\" is not one of the model's classes (\(classes.joined(separator: ", ")))"
        case .conflictingLabels(let path, let image, let first, let second):
            return "\(path): \(image) is labelled \"\(first.label)\" in row \(first.row) and \"\(second.label)\" in row \(second.row)"
        }
    }
}

/// A `path,label` CSV (header required, other columns ignored): labels are strings; classes are
/// ordered numerically where they are numbers, else by name. A row without a label leaves its
/// image unlabelled; an image given two different labels is an error (merged label files do this,
/// and keeping either label silently would train on a guess).
public struct LabelFile: Sendable {
    public let path: String
    /// Image path → label.
    public let labelOf: [String: String]

    public init(path: String) throws {
        self.path = path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LabelError.unreadable(path: path, reason: "cannot read") }
        let rows = CSV.parse(text)
        guard let header = rows.first, let pathColumn = header.firstIndex(of: "path"), let labelColumn = header.firstIndex(of: "label") else {
            throw LabelError.unreadable(path: path, reason: "needs a header with path and label columns")
        }
        var given: [String: (label: String, row: Int)] = [:]
        for (offset, row) in rows.enumerated().dropFirst() where row.count > max(pathColumn, labelColumn) && !row[labelColumn].isEmpty {
            let (image, label) = (row[pathColumn], row[labelColumn])
            if let earlier = given[image] {
                guard earlier.label == label else {
                    throw LabelError.conflictingLabels(path: path, image: image, first: earlier, second: (label, offset + 1))
                }
                continue
            }
            given[image] = (label, offset + 1)
        }
        labelOf = given.mapValues(\.label)
    }

    public static func classOrder(_ labels: some Sequence<String>) -> [String] {
        Array(Set(labels)).sorted { (Int($0) ?? .max, $0) < (Int($1) ?? .max, $1) }
    }

    /// Each dataset row's class index (−1: unlabelled) and the classes, from the dataset's
    /// index.csv paths. Classes are those of the labels that match an image (fewer than two fail),
    /// or `classes` when given (a model's: a label outside them fails).
    public func datasetLabels(_ dataset: String, classes given: [String]? = nil) throws -> (rowClasses: [Int], classes: [String]) {
        let index = try DatasetIndex.read(dataset)
        let count = (index.keys.max() ?? -1) + 1
        let matched = index.compactMapValues { labelOf[$0.path] }
        let classes = given ?? LabelFile.classOrder(matched.values)
        guard Set(matched.values).count >= 2 else {
            throw LabelError.tooFewLabels(path: path, dataset: dataset, matched: matched.count, classes: Set(matched.values).count)
        }
        let classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        var rowClasses = [Int](repeating: -1, count: count)
        for (row, label) in matched {
            guard let index = classIndex[label] else { throw LabelError.unknownClass(path: path, label: label, classes: classes) }
            rowClasses[row] = index
        }
        return (rowClasses, classes)
    }
}
