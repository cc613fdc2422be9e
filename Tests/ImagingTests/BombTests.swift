import Foundation
import Imaging
import TestSupport
import XCTest

/// Files built to exhaust a decoder are refused or bounded, with a reason.
final class BombTests: XCTestCase {
    func testBombsAreRefusedOrBoundedInTimeAndMemory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try PillowReference.run(["bombs", directory.path])

        let huge = Array(try Data(contentsOf: directory.file("huge-dimensions.png")))
        let header = try ImageCodec.probe(huge)
        XCTAssertEqual(header.pixelCount, 10_000_000_000)
        XCTAssertThrowsError(try ImageCodec.decode(huge)) { error in
            guard case ImageDecodeError.tooLarge = error else { return XCTFail("\(error)") }
        }

        // The zTXt chunk would inflate to 200 MB; libpng's chunk limit stops it and the image decodes.
        let started = Date()
        let image = try ImageCodec.decode(Array(try Data(contentsOf: directory.file("ztxt-bomb.png"))))
        XCTAssertEqual([image.width, image.height], [8, 8])
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    /// Every input that ever crashed or hung a fuzzer (Fuzz/regressions) decodes or fails cleanly.
    func testFuzzRegressionCorpus() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/regressions").standardized
        let files = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []
        for name in files where !name.hasPrefix(".") {
            let bytes = Array(try Data(contentsOf: corpus.appendingPathComponent(name)))
            _ = try? ImageCodec.decode(bytes, options: DecodeOptions(maxPixels: 50_000_000, jpegMinimumSide: 64))
            _ = try? ImageCodec.decode(bytes)
        }
        XCTAssertFalse(files.isEmpty, "the regression corpus holds at least the seed cases")
    }
}
