import Foundation
import Imaging
import TestSupport
import XCTest

final class CodecTests: XCTestCase {
    func testSniffsFormatsFromMagicBytesNotNames() {
        XCTAssertEqual(ImageFormat.sniff([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0]), .png)
        XCTAssertEqual(ImageFormat.sniff([0xFF, 0xD8, 0xFF, 0xE0]), .jpeg)
        XCTAssertEqual(ImageFormat.sniff(Array("GIF89a....".utf8)), .gif)
        XCTAssertEqual(ImageFormat.sniff(Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8)), .webp)
        XCTAssertEqual(ImageFormat.sniff(Array("BM\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}".utf8)), .bmp)
        XCTAssertEqual(ImageFormat.sniff([0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0]), .tiff)
        XCTAssertEqual(ImageFormat.sniff([0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8]), .tiff)
        XCTAssertEqual(ImageFormat.sniff(Array("hello, world".utf8)), .other)
        XCTAssertEqual(ImageFormat.sniff([UInt8]()), .other)
    }

    func testPNGRoundTripsEveryChannelCount() throws {
        for channels in 1...4 {
            let image = Pictures.noise(width: 17, height: 11, channels: channels, seed: channels)
            let bytes = try PNG.encode(image)
            XCTAssertEqual(ImageFormat.sniff(bytes), .png)
            let header = try PNG.probe(bytes)
            XCTAssertEqual([header.width, header.height, header.channels, header.bitDepth], [17, 11, channels, 8])
            XCTAssertEqual(try PNG.decode(bytes), image, "channels \(channels)")
        }
    }

    func testJPEGRoundTripIsCloseForGrayAndRGBBaselineAndProgressive() throws {
        for channels in [1, 3] {
            for progressive in [false, true] {
                let image = Pictures.pattern(width: 48, height: 32, channels: channels, seed: 3)
                let bytes = try JPEG.encode(image, quality: 98, progressive: progressive)
                let decoded = try JPEG.decode(bytes)
                XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [48, 32, channels])
                let meanError = zip(image.pixels, decoded.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +) / image.pixels.count
                XCTAssertLessThanOrEqual(meanError, 2, "channels \(channels) progressive \(progressive)")
            }
        }
    }

    func testTruncatedAndCorruptFilesAreClassified() throws {
        let png = try PNG.encode(Pictures.noise(width: 64, height: 64, channels: 3, seed: 1))
        XCTAssertThrowsError(try PNG.decode(Array(png.prefix(png.count / 2)))) { error in
            guard case ImageDecodeError.truncated = error else { return XCTFail("\(error)") }
        }
        var flipped = png
        flipped[png.count / 2] ^= 0xFF  // inside IDAT: the CRC no longer matches
        XCTAssertThrowsError(try PNG.decode(flipped)) { error in
            guard case ImageDecodeError.corrupt(let message) = error else { return XCTFail("\(error)") }
            XCTAssertFalse(message.isEmpty)
        }
        XCTAssertThrowsError(try PNG.decode(Array(png.prefix(20)))) { error in
            guard case ImageDecodeError.truncated = error else { return XCTFail("\(error)") }
        }

        let jpeg = try JPEG.encode(Pictures.noise(width: 64, height: 64, channels: 3, seed: 2), quality: 90)
        XCTAssertThrowsError(try JPEG.decode(Array(jpeg.prefix(jpeg.count * 2 / 3)))) { error in
            guard case ImageDecodeError.truncated = error else { return XCTFail("\(error)") }
        }
        // A frame header whose length field is impossible.
        XCTAssertThrowsError(try JPEG.decode([0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x02] + [UInt8](repeating: 0, count: 40))) { error in
            guard case ImageDecodeError.corrupt = error else { return XCTFail("\(error)") }
        }
        // A marker dropped into the entropy-coded data: libjpeg warns, and that is corruption.
        var damaged = jpeg
        damaged[jpeg.count / 2] = 0xFF
        damaged[jpeg.count / 2 + 1] = 0xD3
        XCTAssertThrowsError(try JPEG.decode(damaged)) { error in
            guard case ImageDecodeError.corrupt(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("Corrupt JPEG data"), message)
        }
    }

    func testDecoderRefusesImagesOverThePixelLimitBeforeDecoding() throws {
        let bytes = try PNG.encode(PixelImage(width: 100, height: 100, channels: 1))
        XCTAssertThrowsError(try ImageCodec.decode(bytes, options: DecodeOptions(maxPixels: 9_999))) { error in
            XCTAssertEqual(error as? ImageDecodeError, .tooLarge(width: 100, height: 100, limit: 9_999))
        }
        XCTAssertNoThrow(try ImageCodec.decode(bytes, options: DecodeOptions(maxPixels: 10_000)))
    }

    func testUnsupportedAndNonImagesAreNamed() {
        XCTAssertThrowsError(try ImageCodec.decode(Array("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8))) { error in
            XCTAssertEqual(error as? ImageDecodeError, .unsupported(.gif))
        }
        XCTAssertThrowsError(try ImageCodec.decode(Array("just text".utf8))) { error in
            XCTAssertEqual(error as? ImageDecodeError, .notImage)
        }
    }

    func testJPEGDCTScalingReadsTheWholeStreamAtASmallerSize() throws {
        let jpeg = try JPEG.encode(Pictures.pattern(width: 256, height: 192, channels: 3, seed: 5), quality: 90)
        let image = try ImageCodec.decode(jpeg, options: DecodeOptions(jpegMinimumSide: 40))
        XCTAssertEqual([image.width, image.height], [64, 48])
        XCTAssertThrowsError(try ImageCodec.decode(Array(jpeg.prefix(jpeg.count * 3 / 4)), options: DecodeOptions(jpegMinimumSide: 40)))
    }

    func testAlphaIsCompositedOverTheBackgroundAndGrayUsesPillowLuma() {
        let rgba = PixelImage(width: 2, height: 1, channels: 4, pixels: [255, 0, 0, 255, 0, 0, 255, 0])
        XCTAssertEqual(rgba.converted(toChannels: 3).pixels, [255, 0, 0, 255, 255, 255])
        XCTAssertEqual(rgba.converted(toChannels: 3, background: (0, 0, 0)).pixels, [255, 0, 0, 0, 0, 0])
        // Pillow: Image.new("RGB", (1, 1), (255, 0, 0)).convert("L").getpixel((0, 0)) == 76
        XCTAssertEqual(PixelImage(width: 1, height: 1, channels: 3, pixels: [255, 0, 0]).converted(toChannels: 1).pixels, [76])
        let luma: Int = (10 * 19595 + 200 * 38470 + 30 * 7471 + 32768) >> 16
        XCTAssertEqual(PixelImage(width: 1, height: 1, channels: 3, pixels: [10, 200, 30]).converted(toChannels: 1).pixels, [UInt8(luma)])
        let grayAlpha = PixelImage(width: 1, height: 1, channels: 2, pixels: [0, 128])
        XCTAssertEqual(grayAlpha.converted(toChannels: 1).pixels, [127])
    }

    func testEveryPNGColourTypeBitDepthAndInterlaceMatchesPillow() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let names = try PillowReference.run(["png-suite", directory.path]).split(separator: "\n").map(String.init)
        XCTAssertGreaterThanOrEqual(names.count, 25)
        for name in names {
            let decoded = try PNG.decode(Array(try Data(contentsOf: directory.file("\(name).png"))))
            let expected = Array(try Data(contentsOf: directory.file("\(name).rgba")))
            XCTAssertEqual(rgba(decoded), expected, name)
        }
        // 16-bit gray has no 8-bit Pillow reference; it must still decode to its high bytes' size.
        let sixteen = try PNG.decode(Array(try Data(contentsOf: directory.file("type0-depth16-interlaced.png"))))
        XCTAssertEqual([sixteen.width, sixteen.height, sixteen.channels], [13, 9, 1])
    }

    func testJPEGsMatchPillowWithinOneIncludingCMYKAndEveryOrientation() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let cases = try PillowReference.run(["jpeg-suite", directory.path]).split(separator: "\n")
        XCTAssertEqual(cases.count, 12)
        for line in cases {
            let fields = line.split(separator: " ").map(String.init)
            let name = fields[0], width = Int(fields[1])!, height = Int(fields[2])!, gray = fields[3] == "L"
            let decoded = try JPEG.decode(Array(try Data(contentsOf: directory.file("\(name).jpg"))))
            let expected = Array(try Data(contentsOf: directory.file("\(name).\(gray ? "gray" : "rgb")")))
            XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [width, height, gray ? 1 : 3], name)
            let worst = zip(decoded.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 999
            XCTAssertLessThanOrEqual(worst, 1, name)
        }
    }

    private func rgba(_ image: PixelImage) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(image.width * image.height * 4)
        for i in 0..<image.width * image.height {
            let p = Array(image.pixels[i * image.channels..<(i + 1) * image.channels])
            switch image.channels {
            case 1: out += [p[0], p[0], p[0], 255]
            case 2: out += [p[0], p[0], p[0], p[1]]
            case 3: out += p + [255]
            default: out += p
            }
        }
        return out
    }
}
