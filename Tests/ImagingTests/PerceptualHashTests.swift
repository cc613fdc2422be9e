import Foundation
import Imaging
import TestSupport
import XCTest

final class PerceptualHashTests: XCTestCase {
    func testHashEqualsImagehashDefinitionComputedByPillowAndNumPy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var paths: [String] = [], ours: [String] = []
        for seed in 0..<6 {
            let image = seed % 2 == 0 ? Pictures.pattern(width: 40 + seed, height: 30, channels: 3, seed: seed)
                                      : Pictures.noise(width: 28, height: 28, channels: 1, seed: seed)
            paths.append(try directory.write("\(seed).png", try PNG.encode(image)).path)
            ours.append(PerceptualHash(image: image).hex)
        }
        let reference = try PillowReference.run(["phash"] + paths).split(separator: "\n").map(String.init)
        XCTAssertEqual(ours, reference)
    }

    func testResizedAndReencodedCopiesStayNearAndDifferentPicturesDoNot() throws {
        let original = Pictures.pattern(width: 120, height: 90, channels: 3, seed: 11)
        let smaller = original.resized(width: 60, height: 45)
        let reencoded = try JPEG.decode(try JPEG.encode(original, quality: 70))
        let other = Pictures.pattern(width: 120, height: 90, channels: 3, seed: 12)
        let hash = PerceptualHash(image: original)
        XCTAssertLessThanOrEqual(hash.distance(to: PerceptualHash(image: smaller)), 4)
        XCTAssertLessThanOrEqual(hash.distance(to: PerceptualHash(image: reencoded)), 4)
        XCTAssertGreaterThan(hash.distance(to: PerceptualHash(image: other)), 10)
        XCTAssertEqual(PerceptualHash(hex: hash.hex), hash)
    }

    func testStatisticsFlagBlankImagesOnly() {
        let blank = PixelImage(width: 32, height: 32, channels: 3, fill: 200)
        let stats = ImageStatistics(image: blank)
        XCTAssertEqual(stats.mean, 200, accuracy: 1)
        XCTAssertEqual(stats.standardDeviation, 0)
        XCTAssertEqual(stats.entropy, 0)
        XCTAssertTrue(stats.isLowInformation)
        XCTAssertFalse(ImageStatistics(image: Pictures.pattern(width: 32, height: 32, channels: 1, seed: 1)).isLowInformation)
        let twoLevels = PixelImage(width: 2, height: 1, channels: 1, pixels: [0, 255])
        let spread = ImageStatistics(image: twoLevels)
        XCTAssertEqual(spread.standardDeviation, 127.5, accuracy: 1e-9)
        XCTAssertEqual(spread.entropy, 1, accuracy: 1e-9)
    }
}
