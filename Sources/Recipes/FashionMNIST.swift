import Foundation
import Formats
import Imaging

/// Turns Debian's `dataset-fashion-mnist` (IDX files) into an unlabeled dump of PNG files in
/// nested folders, with the labels written apart to `labels.csv` for evaluation only.
public struct FashionMNISTRecipe {
    public static let defaultSource = "/usr/share/datasets/fashion-mnist"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public enum Split: String, CaseIterable, Sendable { case train, test, all }

    public var source = FashionMNISTRecipe.defaultSource
    public var split = Split.all
    /// At most this many images (taken evenly from the split's start); nil for all.
    public var limit: Int?
    /// Images per folder; folders are numbered so file names say nothing about labels.
    public var perFolder = 1000
    /// Also write `few-labels.csv`: the first this many images of each class, the labels a user
    /// might make by hand (the input of `label`, `train --labels` and `utility`), and
    /// `held-out-labels.csv`, every other image's, to measure with only; nil for neither.
    public var fewLabelsPerClass: Int?
    /// The two files `fewLabelsPerClass` writes beside `labels.csv`.
    public static let fewLabelsFile = "few-labels.csv", heldOutLabelsFile = "held-out-labels.csv"

    public init(source: String = FashionMNISTRecipe.defaultSource, split: Split = .all, limit: Int? = nil, fewLabelsPerClass: Int? = nil) {
        self.source = source
        self.split = split
        self.limit = limit
        self.fewLabelsPerClass = fewLabelsPerClass
    }

    public struct Result: Codable, Sendable {
        public var images: Int
        public var imagesDirectory: String
        public var labels: String
        public var fewLabels: String?
        public var heldOutLabels: String?
    }

    /// Writes `OUT/images/SPLIT/NNN/INDEX.png` and `OUT/labels.csv` (path,label,class_name; paths
    /// relative to OUT/images), and with `fewLabelsPerClass` `OUT/few-labels.csv` and
    /// `OUT/held-out-labels.csv` (path,label: the class name; in the order written, train before test).
    public func write(to output: String) throws -> Result {
        let splits: [Split] = split == .all ? [.train, .test] : [split]
        let imagesRoot = URL(fileURLWithPath: output).appendingPathComponent("images")
        try FileManager.default.createDirectory(at: imagesRoot, withIntermediateDirectories: true)
        var labelsCSV = CSV.row(["path", "label", "class_name"])
        var fewLabelsCSV = CSV.row(["path", "label"]), heldOutCSV = CSV.row(["path", "label"])
        var labelledPerClass = [Int](repeating: 0, count: FashionMNISTRecipe.classNames.count)
        var written = 0
        for part in splits {
            let prefix = part == .train ? "train" : "t10k"
            let (count, rows, columns, pixels) = try readImages("\(source)/\(prefix)-images-idx3-ubyte.gz")
            let labels = try readLabels("\(source)/\(prefix)-labels-idx1-ubyte.gz")
            guard labels.count == count else {
                throw RecipeError.badFormat(path: "\(source)/\(prefix)-labels-idx1-ubyte.gz", reason: "\(labels.count) labels for \(count) images")
            }
            let take = min(count, limit.map { max(0, $0 - written) } ?? count)
            for index in 0..<take {
                let folder = String(format: "%03d", index / perFolder)
                let relative = "\(part.rawValue)/\(folder)/\(String(format: "%05d", index)).png"
                let image = PixelImage(width: columns, height: rows, channels: 1,
                                       pixels: Array(pixels[(index * rows * columns)..<((index + 1) * rows * columns)]))
                let target = imagesRoot.appendingPathComponent(relative)
                if index % perFolder == 0 {
                    try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                }
                try Data(try PNG.encode(image)).write(to: target)
                let label = Int(labels[index])
                labelsCSV += CSV.row([relative, String(label), FashionMNISTRecipe.classNames[label]])
                if let fewLabelsPerClass {
                    let row = CSV.row([relative, FashionMNISTRecipe.classNames[label]])
                    if labelledPerClass[label] < fewLabelsPerClass {
                        labelledPerClass[label] += 1
                        fewLabelsCSV += row
                    } else {
                        heldOutCSV += row
                    }
                }
            }
            written += take
        }
        let labelsPath = URL(fileURLWithPath: output).appendingPathComponent("labels.csv")
        try Data(labelsCSV.utf8).write(to: labelsPath, options: .atomic)
        var result = Result(images: written, imagesDirectory: imagesRoot.path, labels: labelsPath.path)
        if fewLabelsPerClass != nil {
            let few = URL(fileURLWithPath: output).appendingPathComponent(FashionMNISTRecipe.fewLabelsFile)
            let heldOut = URL(fileURLWithPath: output).appendingPathComponent(FashionMNISTRecipe.heldOutLabelsFile)
            try Data(fewLabelsCSV.utf8).write(to: few, options: .atomic)
            try Data(heldOutCSV.utf8).write(to: heldOut, options: .atomic)
            (result.fewLabels, result.heldOutLabels) = (few.path, heldOut.path)
        }
        return result
    }

    private func readImages(_ path: String) throws -> (Int, Int, Int, [UInt8]) {
        let bytes = try readGzip(path)
        guard bytes.count >= 16, bigEndian(bytes, 0) == 0x0803 else { throw RecipeError.badFormat(path: path, reason: "not an IDX image file") }
        let count = bigEndian(bytes, 4), rows = bigEndian(bytes, 8), columns = bigEndian(bytes, 12)
        guard bytes.count == 16 + count * rows * columns else { throw RecipeError.badFormat(path: path, reason: "size does not match its header") }
        return (count, rows, columns, Array(bytes[16...]))
    }

    private func readLabels(_ path: String) throws -> [UInt8] {
        let bytes = try readGzip(path)
        guard bytes.count >= 8, bigEndian(bytes, 0) == 0x0801 else { throw RecipeError.badFormat(path: path, reason: "not an IDX label file") }
        let count = bigEndian(bytes, 4)
        guard bytes.count == 8 + count else { throw RecipeError.badFormat(path: path, reason: "size does not match its header") }
        return Array(bytes[8...])
    }

    private func bigEndian(_ bytes: [UInt8], _ offset: Int) -> Int {
        Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
    }
}
