// libFuzzer harness for everything `catalog` does with a file's bytes in Swift: sniff, probe,
// decode (PNG and JPEG, DCT-scaled as the catalogue decodes), EXIF orientation, gray conversion,
// perceptual hash, statistics, and the resize `prepare` does. Compiled together with the Imaging
// sources by `make -C Fuzz swift` (address sanitizer on, Swift's own checks on).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImaging(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = ImageFormat.sniff(bytes)
    guard let header = try? ImageCodec.probe(bytes), header.pixelCount <= 1 << 22 else { return 0 }
    for minimumSide in [0, 64] {
        guard let image = try? ImageCodec.decode(bytes, header: header, options: DecodeOptions(maxPixels: 1 << 22, jpegMinimumSide: minimumSide)) else {
            continue
        }
        let gray = image.channels == 1 ? image : image.converted(toChannels: 1, background: (0, 0, 0))
        _ = PerceptualHash(image: gray)
        _ = ImageStatistics(image: gray)
        _ = image.converted(toChannels: 3, background: (255, 255, 255)).fitted(size: 32, mode: .crop, background: (255, 255, 255))
    }
    return 0
}
