import Imaging
import NN

/// A grid of images in [-1, 1], as torchvision's make_grid (2-pixel black padding), as 8-bit pixels.
public enum SampleGrid {
    /// `images` [N, C, S, S]; `columns` per row.
    public static func image(_ images: Tensor, columns: Int = 8, padding: Int = 2) -> PixelImage {
        let plain = images.plain()
        let count = plain.shape[0], channels = plain.shape[1], size = plain.shape[2]
        let rows = (count + columns - 1) / columns
        let width = columns * (size + padding) + padding, height = rows * (size + padding) + padding
        var grid = PixelImage(width: width, height: height, channels: channels)
        for index in 0..<count {
            let left = padding + (index % columns) * (size + padding), top = padding + (index / columns) * (size + padding)
            for c in 0..<channels {
                for y in 0..<size {
                    for x in 0..<size {
                        let value = plain[((index * channels + c) * size + y) * size + x]
                        grid.pixels[((top + y) * width + left + x) * channels + c] = toByte(value)
                    }
                }
            }
        }
        return grid
    }

    /// [-1, 1] → 0…255, rounded, clamped (the inverse of x/127.5 − 1).
    @inline(__always)
    public static func toByte(_ value: Float) -> UInt8 {
        UInt8(max(0, min(255, ((value + 1) * 127.5).rounded())))
    }
}
