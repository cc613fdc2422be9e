/// The shapes of one 2-D convolution: input [batch, inChannels, inHeight, inWidth], weight
/// [outChannels, inChannels, kernel, kernel], output [batch, outChannels, outHeight, outWidth].
/// A transposed convolution is described by the convolution it is the transpose of (the one
/// that maps its output back to its input).
public struct ConvolutionGeometry: Hashable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var inHeight: Int
    public var inWidth: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public var outHeight: Int { (inHeight + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (inWidth + 2 * padding - kernel) / stride + 1 }
    public var inputShape: [Int] { [batch, inChannels, inHeight, inWidth] }
    public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }
    public var weightShape: [Int] { [outChannels, inChannels, kernel, kernel] }

    /// Multiply-adds of one forward pass ×2.
    public var flops: Double {
        2 * Double(batch * outChannels * outHeight * outWidth) * Double(inChannels * kernel * kernel)
    }

    public init(batch: Int, inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int) {
        self.batch = batch
        self.inChannels = inChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }
}

/// Plain-Swift convolution: the textbook loops, Double accumulation. Obviously correct and slow;
/// the fast path is tested against it.
public enum ReferenceConvolution {
    /// output[n,o,y,x] = Σ_{c,i,j} weight[o,c,i,j] · input[n,c, y·s−p+i, x·s−p+j]   (overwrites output)
    public static func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ g: ConvolutionGeometry) {
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for y in 0..<g.outHeight {
                    for x in 0..<g.outWidth {
                        var sum = 0.0
                        for c in 0..<g.inChannels {
                            for i in 0..<g.kernel {
                                let iy = y * g.stride - g.padding + i
                                guard iy >= 0 && iy < g.inHeight else { continue }
                                for j in 0..<g.kernel {
                                    let ix = x * g.stride - g.padding + j
                                    guard ix >= 0 && ix < g.inWidth else { continue }
                                    sum += Double(weight[((o * g.inChannels + c) * g.kernel + i) * g.kernel + j])
                                        * Double(input[((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix])
                                }
                            }
                        }
                        output[((n * g.outChannels + o) * g.outHeight + y) * g.outWidth + x] = Float(sum)
                    }
                }
            }
        }
    }

    /// inputGradient[n,c,iy,ix] = Σ weight[o,c,i,j] · outputGradient[n,o,y,x] over iy = y·s−p+i, ix = x·s−p+j
    /// (overwrites inputGradient).
    public static func backwardData(outputGradient: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    inputGradient: UnsafeMutablePointer<Float>, _ g: ConvolutionGeometry) {
        var sums = [Double](repeating: 0, count: g.batch * g.inChannels * g.inHeight * g.inWidth)
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for y in 0..<g.outHeight {
                    for x in 0..<g.outWidth {
                        let d = Double(outputGradient[((n * g.outChannels + o) * g.outHeight + y) * g.outWidth + x])
                        for c in 0..<g.inChannels {
                            for i in 0..<g.kernel {
                                let iy = y * g.stride - g.padding + i
                                guard iy >= 0 && iy < g.inHeight else { continue }
                                for j in 0..<g.kernel {
                                    let ix = x * g.stride - g.padding + j
                                    guard ix >= 0 && ix < g.inWidth else { continue }
                                    sums[((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix] +=
                                        Double(weight[((o * g.inChannels + c) * g.kernel + i) * g.kernel + j]) * d
                                }
                            }
                        }
                    }
                }
            }
        }
        for index in sums.indices { inputGradient[index] = Float(sums[index]) }
    }

    /// weightGradient[o,c,i,j] += Σ_{n,y,x} input[n,c, y·s−p+i, x·s−p+j] · outputGradient[n,o,y,x]   (accumulates)
    public static func backwardWeights(input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
                                       weightGradient: UnsafeMutablePointer<Float>, _ g: ConvolutionGeometry) {
        for o in 0..<g.outChannels {
            for c in 0..<g.inChannels {
                for i in 0..<g.kernel {
                    for j in 0..<g.kernel {
                        var sum = 0.0
                        for n in 0..<g.batch {
                            for y in 0..<g.outHeight {
                                let iy = y * g.stride - g.padding + i
                                guard iy >= 0 && iy < g.inHeight else { continue }
                                for x in 0..<g.outWidth {
                                    let ix = x * g.stride - g.padding + j
                                    guard ix >= 0 && ix < g.inWidth else { continue }
                                    sum += Double(input[((n * g.inChannels + c) * g.inHeight + iy) * g.inWidth + ix])
                                        * Double(outputGradient[((n * g.outChannels + o) * g.outHeight + y) * g.outWidth + x])
                                }
                            }
                        }
                        weightGradient[((o * g.inChannels + c) * g.kernel + i) * g.kernel + j] += Float(sum)
                    }
                }
            }
        }
    }

    /// biasGradient[o] += Σ_{n,y,x} outputGradient[n,o,y,x]
    public static func backwardBias(outputGradient: UnsafePointer<Float>, biasGradient: UnsafeMutablePointer<Float>,
                                    batch: Int, channels: Int, plane: Int) {
        for o in 0..<channels {
            var sum = 0.0
            for n in 0..<batch {
                let base = (n * channels + o) * plane
                for k in 0..<plane { sum += Double(outputGradient[base + k]) }
            }
            biasGradient[o] += Float(sum)
        }
    }
}
