import Foundation
import Formats
import TestSupport
import XCTest

final class SafetensorsTests: XCTestCase {
    func testRoundTripWithMetadataAndTheSpecsLayout() throws {
        let tensors: [String: Safetensors.Entry] = [
            "main.0.weight": .init(floats: (0..<24).map { Float($0) / 8 }, shape: [2, 3, 2, 2]),
            "main.1.num_batches_tracked": .init(int64: 42),
            "a.bias": .init(floats: [1, -1], shape: [2]),
        ]
        let bytes = try Safetensors.encode(tensors, metadata: ["epoch": "3"])
        let length = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(length % 8, 0)
        XCTAssertEqual(bytes.count, 8 + length + 24 * 4 + 8 + 2 * 4)
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes[8..<8 + length])) as? [String: Any])
        XCTAssertEqual((header["a.bias"] as? [String: Any])?["data_offsets"] as? [Int], [0, 8], "tensors are laid out in name order")
        let (decoded, metadata) = try Safetensors.decode(bytes)
        XCTAssertEqual(decoded, tensors)
        XCTAssertEqual(metadata, ["epoch": "3"])
        XCTAssertEqual(decoded["main.1.num_batches_tracked"]?.int64, 42)
    }

    func testCorruptFilesAreRefusedWithThePath() {
        XCTAssertThrowsError(try Safetensors.decode([1, 2, 3], path: "x.safetensors")) { XCTAssertTrue("\($0)".contains("x.safetensors")) }
        var bytes = try! Safetensors.encode(["t": .init(floats: [1, 2, 3], shape: [3])])
        bytes.removeLast(4)
        XCTAssertThrowsError(try Safetensors.decode(bytes, path: "cut.safetensors")) { XCTAssertTrue("\($0)".contains("do not fit")) }
    }

    func testAtomicWriteReplacesWholeAndLeavesNoTemporaryFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("model.safetensors").path
        try Safetensors.write(["w": .init(floats: [1], shape: [1])], to: path)
        try Safetensors.write(["w": .init(floats: [2, 3], shape: [2])], to: path)
        XCTAssertEqual(try Safetensors.read(path: path).tensors["w"]?.floats, [2, 3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["model.safetensors"])
    }
}
