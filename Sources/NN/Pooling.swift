/// Max pooling to a fixed 4×4 grid (windows of H/4 × W/4, stride equal to the window), for
/// feature extraction: [N, C, H, W] in any layout → [N, C, 4, 4] plain.
public final class MaxPoolToGrid {
    private var primitive: (source: MemoryFormat, primitive: Primitive)?
    private var pooled: Tensor?
    private var plainScratch: Tensor?

    public init() {}

    /// oneDNN's pooling on the input's own (blocked) layout; only the small result is reordered.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let count = input.shape[0], channels = input.shape[1], window = input.shape[2] / 4
        precondition(input.shape[2] == input.shape[3] && window * 4 == input.shape[2], "pooling to 4×4 needs a square side divisible by 4")
        let source = input.format ?? MemoryFormat.plain(input.shape)
        if primitive?.source != source {
            primitive = (source, Primitive.maxPooling(source: source, destination: .any([count, channels, 4, 4], source.precision), window: window))
        }
        let pool = primitive!.primitive, destination = pool.format(.destination)
        let output = Tensor.reuse(pooled, shape: [count, channels, 4, 4], format: destination)
        pooled = output
        pool.execute([(Argument.source, input.data, source), (Argument.destination, output.data, destination)])
        return output.converted(toPlainInto: &plainScratch)
    }

    /// The same, in plain Swift: the maximum of each window (the reference the fast path is tested against).
    public static func reference(_ tensor: Tensor) -> [Float] {
        let plain = tensor.plain()
        let count = plain.shape[0], channels = plain.shape[1], height = plain.shape[2], width = plain.shape[3]
        let windowHeight = height / 4, windowWidth = width / 4
        var out = [Float](repeating: -.infinity, count: count * channels * 16)
        for n in 0..<count {
            for c in 0..<channels {
                let source = plain.data + (n * channels + c) * height * width
                for y in 0..<(windowHeight * 4) {
                    for x in 0..<(windowWidth * 4) {
                        let cell = ((n * channels + c) * 4 + y / windowHeight) * 4 + x / windowWidth
                        out[cell] = max(out[cell], source[y * width + x])
                    }
                }
            }
        }
        return out
    }
}
