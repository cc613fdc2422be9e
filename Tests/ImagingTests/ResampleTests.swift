import Foundation
import Imaging
import TestSupport
import XCTest

final class ResampleTests: XCTestCase {
    func testResizeEqualsPillowExactlyForEveryFilterAndDirection() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let cases: [(Int, Int, Int, Int, Int, ResampleFilter, String)] = [
            (28, 28, 1, 32, 32, .lanczos, "lanczos"),
            (97, 61, 3, 32, 32, .lanczos, "lanczos"),
            (97, 61, 3, 64, 40, .bilinear, "bilinear"),
            (40, 30, 1, 13, 77, .bilinear, "bilinear"),
            (50, 50, 3, 7, 7, .box, "box"),
            (8, 5, 3, 31, 19, .bilinear, "bilinear"),
        ]
        for (index, (w, h, c, ow, oh, filter, name)) in cases.enumerated() {
            let image = Pictures.noise(width: w, height: h, channels: c, seed: index)
            let source = try directory.write("in\(index).png", try PNG.encode(image))
            let expectedPath = directory.file("out\(index).raw").path
            _ = try PillowReference.run(["resize", source.path, expectedPath, "\(ow)", "\(oh)", name])
            let resized = image.resized(width: ow, height: oh, filter: filter)
            XCTAssertEqual(resized.pixels, Array(try Data(contentsOf: URL(fileURLWithPath: expectedPath))), "\(w)x\(h)x\(c) -> \(ow)x\(oh) \(name)")
        }
    }

    func testDownscalingAveragesInsteadOfPointSampling() {
        // A one-pixel checkerboard shrunk 4×: point sampling gives 0 or 255, antialiasing ~127.
        var checker = PixelImage(width: 64, height: 64, channels: 1)
        for y in 0..<64 { for x in 0..<64 where (x + y) % 2 == 0 { checker.pixels[y * 64 + x] = 255 } }
        let small = checker.resized(width: 16, height: 16, filter: .bilinear)
        for value in small.pixels[17..<239] { XCTAssertEqual(Int(value), 127, accuracy: 2) }
    }

    func testCropTakesTheRequestedWindow() {
        let image = Pictures.noise(width: 5, height: 4, channels: 2, seed: 9)
        let crop = image.cropped(x: 1, y: 2, width: 3, height: 2)
        XCTAssertEqual(crop.width, 3)
        XCTAssertEqual(Array(crop.pixels[0..<2]), Array(image.pixels[(2 * 5 + 1) * 2..<(2 * 5 + 1) * 2 + 2]))
        XCTAssertEqual(Array(crop.pixels[10..<12]), Array(image.pixels[(3 * 5 + 3) * 2..<(3 * 5 + 3) * 2 + 2]))
    }
}
