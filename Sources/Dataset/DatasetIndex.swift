import Foundation
import Formats

/// DIR/index.csv of a prepared dataset: row, shard, path, sha256.
public enum DatasetIndex {
    public static func read(_ directory: String) throws -> [Int: (path: String, sha256: String)] {
        guard let text = try? String(contentsOfFile: directory + "/index.csv", encoding: .utf8) else {
            throw DatasetError.notADataset(path: directory, reason: "no readable index.csv")
        }
        var rows: [Int: (path: String, sha256: String)] = [:]
        for fields in CSV.parse(text).dropFirst() where fields.count >= 4 {
            if let row = Int(fields[0]) { rows[row] = (fields[2], fields[3]) }
        }
        return rows
    }
}
