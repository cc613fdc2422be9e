import Dataset
import Foundation
import Imaging
import TestSupport
import XCTest

/// prepare's two JPEG paths against Pillow on images well above the target size (where DCT scaling
/// happens), and what becomes of 16-bit PNGs and ICC profiles.
final class DecodeModeTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("decode-mode") }
    override func tearDown() { directory.remove() }

    func testBothModesMatchPillowsMatchingPathOnLargeImages() throws {
        let size = 64
        let cases = try PillowReference.run(["prepare-suite", directory.path, String(size)]).split(separator: "\n").map { $0.split(separator: " ") }
        XCTAssertEqual(cases.count, 14)
        var fastAgainstFull: [String] = []
        for entry in cases {
            let name = String(entry[0]), channels = entry[1] == "L" ? 1 : 3
            let bytes = Array(try Data(contentsOf: directory.file(name)))
            var samples: [DecodeMode: [UInt8]] = [:]
            for mode in DecodeMode.allCases {
                let ours = try SampleDecoder(size: size, channels: channels, fit: .crop, background: [255, 255, 255], mode: mode).decode(bytes)
                let pillow = Array(try Data(contentsOf: directory.file(name.split(separator: ".")[0] + "." + mode.rawValue)))
                XCTAssertEqual(ours.count, pillow.count, name)
                let differences = zip(ours, pillow).map { abs(Int($0) - Int($1)) }
                // libjpeg-turbo's IDCT is shared; Pillow's and our RGB→luma and resampling are bit-exact.
                XCTAssertLessThanOrEqual(differences.max() ?? 99, name.hasSuffix(".png") ? 0 : 1, "\(name) \(mode)")
                samples[mode] = ours
            }
            let apart = zip(samples[.fast]!, samples[.full]!).map { abs(Int($0) - Int($1)) }
            fastAgainstFull.append(String(format: "%@ max %d mean %.2f", name, apart.max()!, Double(apart.reduce(0, +)) / Double(apart.count)))
            if name.hasSuffix(".png") { XCTAssertEqual(apart.max(), 0, "PNGs decode the same in both modes") }
        }
        print("fast vs full:", fastAgainstFull.joined(separator: "; "))
    }

    /// An embedded ICC profile is ignored, as Pillow and torchvision ignore it unless asked:
    /// the same pixels with or without it.
    func testICCProfilesAreIgnored() throws {
        _ = try PillowReference.run(["prepare-suite", directory.path, "32"])
        let withProfile = Array(try Data(contentsOf: directory.file("icc.jpg")))
        XCTAssertNotNil(withProfile.indices.first { Array(withProfile[$0..<min($0 + 11, withProfile.count)]) == Array("ICC_PROFILE".utf8) })
        let decoded = try ImageCodec.decode(withProfile)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [512, 384, 3])
    }

    /// 16-bit PNG samples keep their high byte, as Pillow's 8-bit modes do (libpng's strip_16).
    func testSixteenBitPNGsKeepTheHighByte() throws {
        _ = try PillowReference.run(["prepare-suite", directory.path, "32"])
        let image = try ImageCodec.decode(Array(try Data(contentsOf: directory.file("rgb16.png"))))
        XCTAssertEqual([image.width, image.height, image.channels], [280, 200, 3])
        let full = try SampleDecoder(size: 32, channels: 3, fit: .crop, background: [255, 255, 255], mode: .full)
            .decode(Array(try Data(contentsOf: directory.file("rgb16.png"))))
        XCTAssertEqual(full, Array(try Data(contentsOf: directory.file("rgb16.full"))))
    }
}
