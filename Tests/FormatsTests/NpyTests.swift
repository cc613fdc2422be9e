import Foundation
import Formats
import TestSupport
import XCTest

final class NpyTests: XCTestCase {
    func testHeaderBytesFollowTheSpec() {
        let header = Npy.header(dtype: .uint8, shape: [3, 32, 32, 1])
        XCTAssertEqual(Array(header[0..<8]), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = Int(header[8]) | Int(header[9]) << 8
        XCTAssertEqual(header.count, 10 + length)
        XCTAssertEqual(header.count % 64, 0, "data must start 64-byte aligned")
        XCTAssertEqual(header.last, UInt8(ascii: "\n"))
        let text = String(decoding: header[10...], as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 32, 32, 1), }"), text)
        XCTAssertTrue(String(decoding: Npy.header(dtype: .float32, shape: [7]), as: UTF8.self).contains("'shape': (7,)"))
    }

    func testRoundTripAndNumPyReadsWhatWeWrite() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let values: [Float] = (0..<24).map { Float($0) / 4 - 2 }
        let path = directory.file("values.npy").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingAtPath: path).unwrap()
        try values.withUnsafeBufferPointer { try Npy.write($0, dtype: .float32, shape: [2, 3, 4], to: handle) }
        try handle.close()

        let (header, data) = try Npy.read(path: path)
        XCTAssertEqual(header.shape, [2, 3, 4])
        XCTAssertEqual(header.dtype, .float32)
        XCTAssertEqual(data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, values)

        guard let python = PillowReference.python else { throw XCTSkip("NumPy not installed") }
        let printed = try Process.output(python, ["-c", "import numpy; a = numpy.load('\(path)'); print(a.dtype, a.shape, float(a.sum()), a[1, 2, 3])"])
        XCTAssertEqual(printed.trimmingCharacters(in: .whitespacesAndNewlines), "float32 (2, 3, 4) 21.0 3.75")
    }

    func testMalformedFilesAreRefusedWithThePath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("bad.npy", Array("not numpy".utf8)).path
        XCTAssertThrowsError(try Npy.read(path: path)) { XCTAssertTrue("\($0)".contains("bad.npy")) }
        let short = try directory.write("short.npy", Npy.header(dtype: .uint8, shape: [10]) + [1, 2, 3]).path
        XCTAssertThrowsError(try Npy.read(path: short)) { XCTAssertTrue("\($0)".contains("expected 10")) }
    }
}

extension Optional {
    func unwrap(file: StaticString = #filePath, line: UInt = #line) throws -> Wrapped {
        try XCTUnwrap(self, file: file, line: line)
    }
}
