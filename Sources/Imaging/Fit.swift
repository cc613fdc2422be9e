/// How an image becomes a square training sample.
public enum FitMode: String, Codable, CaseIterable, Sendable {
    /// Centre-crop to a square, then resize (PyTorch DCGAN's Resize + CenterCrop).
    case crop
    /// Resize the longer side to the target and letterbox with the background colour.
    case pad
    /// Resize to the square, ignoring the aspect ratio.
    case stretch
}

extension PixelImage {
    /// A `size`×`size` image with the same channels, by `mode`. Downscaling is antialiased
    /// (bilinear widened by the scale factor, as Pillow's). Composite alpha away first.
    public func fitted(size: Int, mode: FitMode, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) -> PixelImage {
        switch mode {
        case .stretch:
            return resized(width: size, height: size)
        case .crop:
            let side = min(width, height)
            let square = side == width && side == height ? self
                : cropped(x: (width - side) / 2, y: (height - side) / 2, width: side, height: side)
            return square.width == size ? square : square.resized(width: size, height: size)
        case .pad:
            let longer = max(width, height)
            let scaledWidth = max(1, (width * size + longer / 2) / longer)
            let scaledHeight = max(1, (height * size + longer / 2) / longer)
            let scaled = resized(width: scaledWidth, height: scaledHeight)
            let fill: [UInt8] = channels == 1 ? [PixelImage.luma(background.0, background.1, background.2)]
                : [background.0, background.1, background.2, 255].prefix(channels).map { $0 }
            var canvas = PixelImage(width: size, height: size, channels: channels)
            for index in 0..<(size * size) {
                for c in 0..<channels { canvas.pixels[index * channels + c] = fill[c] }
            }
            let left = (size - scaledWidth) / 2, top = (size - scaledHeight) / 2
            let rowBytes = scaledWidth * channels
            for y in 0..<scaledHeight {
                let to = ((top + y) * size + left) * channels
                canvas.pixels.replaceSubrange(to..<to + rowBytes, with: scaled.pixels[(y * rowBytes)..<((y + 1) * rowBytes)])
            }
            return canvas
        }
    }
}
