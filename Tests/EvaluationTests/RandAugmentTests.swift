import Formats
import XCTest
@testable import Evaluation

final class RandAugmentTests: XCTestCase {
    private func applied(_ operation: RandAugment.Operation, magnitude: Float, sign: Float = 1, to image: [Float],
                         channels: Int = 1, size: Int) -> [Float] {
        var out = image
        out.withUnsafeMutableBufferPointer {
            RandAugment(channels: channels, imageSize: size).apply(operation, magnitude: magnitude, sign: sign, to: $0.baseAddress!)
        }
        return out
    }

    private func randomImage(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.nextUniform() * 2 - 1 }
    }

    /// At magnitude 0 the geometric operations and solarize leave the image as it is, exactly.
    func testZeroMagnitudeIsTheIdentityWhereItShouldBe() {
        let image = randomImage(12 * 12, seed: 1)
        for operation: RandAugment.Operation in [.identity, .rotate, .shearX, .shearY, .translateX, .translateY, .solarize] {
            XCTAssertEqual(applied(operation, magnitude: 0, to: image, size: 12), image, "\(operation)")
        }
    }

    /// Translation by 30% of a 10-pixel side moves the content 3 pixels, the vacated border the edge repeated.
    func testTranslationMovesByThirtyPercentOfTheSide() {
        let size = 10, image = randomImage(size * size, seed: 2)
        let right = applied(.translateX, magnitude: 1, sign: 1, to: image, size: size)
        let down = applied(.translateY, magnitude: 1, sign: 1, to: image, size: size)
        for y in 0..<size {
            for x in 0..<size {
                XCTAssertEqual(right[y * size + x], image[y * size + max(x - 3, 0)], accuracy: 1e-5)
                XCTAssertEqual(down[y * size + x], image[max(y - 3, 0) * size + x], accuracy: 1e-5)
            }
        }
    }

    /// A centred vertical bar rotated one way is the mirror image of it rotated the other way,
    /// and is no longer the bar.
    func testRotationBothWaysMirrorsASymmetricImage() {
        let size = 15
        var bar = [Float](repeating: -1, count: size * size)
        for y in 2..<13 { bar[y * size + 7] = 1 }
        let left = applied(.rotate, magnitude: 1, sign: -1, to: bar, size: size)
        let right = applied(.rotate, magnitude: 1, sign: 1, to: bar, size: size)
        for y in 0..<size {
            for x in 0..<size { XCTAssertEqual(left[y * size + x], right[y * size + size - 1 - x], accuracy: 1e-5) }
        }
        XCTAssertGreaterThan(zip(bar, right).map { abs($0 - $1) }.reduce(0, +), 10)
    }

    /// Solarize at full magnitude inverts every pixel; posterize at 4 bits keeps levels that are
    /// multiples of 16; equalize sends a two-level image to black and white; autocontrast stretches
    /// the range to [-1, 1]; colour leaves a grey image grey.
    func testPhotometricOperationsDoWhatPILDoes() {
        let image = randomImage(8 * 8, seed: 3)
        XCTAssertEqual(applied(.solarize, magnitude: 1, to: image, size: 8).map { -$0 }, image.map { x in x }, accuracy: 1e-6)
        for value in applied(.posterize, magnitude: 0, to: image, size: 8) {
            let level = ((value + 1) / 2 * 255).rounded()
            XCTAssertEqual(level.truncatingRemainder(dividingBy: 16), 0, "\(level)")
        }
        // (PIL leaves an image of fewer than 256 pixels off its top level as it is.)
        let twoLevels = (0..<32 * 32).map { $0 % 3 == 0 ? Float(0.2) : Float(-0.3) }
        XCTAssertEqual(Set(applied(.equalize, magnitude: 0.5, to: twoLevels, size: 32)), [-1, 1])
        let narrow = image.map { $0 / 2 }
        let stretched = applied(.autoContrast, magnitude: 0.5, to: narrow, size: 8)
        XCTAssertEqual(stretched.min()!, -1, accuracy: 1e-6)
        XCTAssertEqual(stretched.max()!, 1, accuracy: 1e-6)
        let grey = randomImage(8 * 8, seed: 4), rgb = grey + grey + grey
        XCTAssertEqual(applied(.color, magnitude: 1, to: rgb, channels: 3, size: 8), rgb, accuracy: 1e-5)
    }

    /// Every operation at every magnitude keeps pixels in [-1, 1]; a draw is the same for the same seed.
    func testOperationsStayInRangeAndDrawsRepeat() {
        let image = randomImage(3 * 9 * 9, seed: 5)
        for operation in RandAugment.Operation.allCases {
            for magnitude: Float in [0, 0.3, 1] {
                let out = applied(operation, magnitude: magnitude, sign: -1, to: image, channels: 3, size: 9)
                XCTAssertTrue(out.allSatisfy { $0 >= -1 && $0 <= 1 }, "\(operation) at \(magnitude)")
            }
        }
        func draw(_ seed: UInt64) -> [Float] {
            var out = image, random = SeededRandom(seed: seed)
            out.withUnsafeMutableBufferPointer { RandAugment(channels: 3, imageSize: 9).apply($0.baseAddress!, random: &random) }
            return out
        }
        XCTAssertEqual(draw(7), draw(7))
        XCTAssertTrue((0..<8).contains { draw(UInt64($0)) != image }, "some draw changes the image")
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) where abs(x - y) > accuracy {
        XCTFail("\(x) against \(y)", file: file, line: line)
        return
    }
}
