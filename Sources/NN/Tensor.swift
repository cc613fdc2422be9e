import Foundation

/// A dense Float32 tensor with a shape (NCHW for images, [N, F] for features). Reference
/// semantics on purpose: layers keep their output and gradient tensors and reuse them from one
/// iteration to the next, so the steady state allocates nothing. Storage is 64-byte aligned for
/// SIMD and oneDNN.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    /// Floats of storage: the product of the shape, or more for a channel-padded blocked layout.
    public private(set) var count: Int
    /// nil: plain row-major (NCHW). Otherwise a oneDNN layout chosen by the fast path (nChw8c, …);
    /// element-wise code may run on it as is, anything channel-aware must convert first.
    public private(set) var format: MemoryFormat?
    public private(set) var data: UnsafeMutablePointer<Float>
    private var capacity: Int
    /// Moves on every change made through Tensor's methods; code that writes through `data` calls
    /// `markModified()`. The fast path keeps weights reordered for its primitives until it moves.
    public private(set) var version: UInt64 = 0

    public func markModified() { version &+= 1 }

    public init(shape: [Int], zeros: Bool = true) {
        precondition(shape.allSatisfy { $0 > 0 }, "tensor dimensions must be positive: \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        capacity = count
        data = Tensor.allocate(count)
        if zeros { data.initialize(repeating: 0, count: count) }
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape, zeros: false)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { free(data) }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(count, 1) * MemoryLayout<Float>.stride) == 0, let raw else {
            fatalError("out of memory allocating \(count) floats")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Changes the shape (plain layout), reallocating only when the storage is too small.
    /// Contents are undefined.
    public func reshape(to newShape: [Int]) { adopt(shape: newShape, format: nil) }

    /// Takes a shape and layout; new storage is zeroed, so the padding of blocked layouts is zero.
    func adopt(shape newShape: [Int], format newFormat: MemoryFormat?) {
        let plain = newFormat.map(\.isPlain) ?? true
        let newCount = plain ? newShape.reduce(1, *) : newFormat!.elementCount
        if newCount > capacity {
            free(data)
            data = Tensor.allocate(newCount)
            data.initialize(repeating: 0, count: newCount)
            capacity = newCount
        }
        shape = newShape
        count = newCount
        format = plain ? nil : newFormat
        markModified()
    }

    /// This tensor in `target` layout (nil = plain): itself when it already is, else a reorder
    /// into `scratch` (created on first use and kept by the caller for the next time).
    func converted(to target: MemoryFormat?, scratch: inout Tensor?) -> Tensor {
        let current = format ?? MemoryFormat.plain(shape), wanted = target ?? MemoryFormat.plain(shape)
        if current == wanted { return self }
        let destination = scratch ?? Tensor(shape: shape, zeros: false)
        scratch = destination
        destination.adopt(shape: shape, format: wanted)
        Reorders.run(from: current, data, to: wanted, destination.data)
        return destination
    }

    /// This tensor in its own layout with fp32 elements: itself, or a conversion into `scratch`.
    /// Swift loops over `data` need it where a bf16 tensor may arrive.
    func inFP32(scratch: inout Tensor?) -> Tensor {
        guard let format, format.precision != .fp32 else { return self }
        return converted(to: format.holding(.fp32), scratch: &scratch)
    }

    /// This tensor in plain layout: itself, or a reorder into `scratch` (kept by the caller).
    public func converted(toPlainInto scratch: inout Tensor?) -> Tensor { converted(to: nil, scratch: &scratch) }

    /// A plain copy when the layout is blocked; the tensor itself when it is plain.
    public func plain() -> Tensor {
        var scratch: Tensor?
        return converted(to: nil, scratch: &scratch)
    }

    /// Takes `values` (plain row-major) and their shape, reusing the storage when it is large enough.
    public func assign(shape newShape: [Int], values: [Float]) {
        precondition(values.count == newShape.reduce(1, *), "\(values.count) values for shape \(newShape)")
        adopt(shape: newShape, format: nil)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
        markModified()
    }

    /// Same element count, new view of the dimensions (Flatten).
    public func viewAs(_ newShape: [Int]) {
        precondition(format == nil, "only plain tensors can be viewed with another shape")
        precondition(newShape.reduce(1, *) == count, "view \(newShape) does not hold \(count) elements")
        shape = newShape
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    /// The elements in plain row-major order, whatever the layout.
    public var values: [Float] { format == nil ? Array(buffer) : plain().values }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set {
            data[index] = newValue
            markModified()
        }
    }

    public func fill(_ value: Float) {
        data.update(repeating: value, count: count)
        markModified()
    }

    public func copy(from other: Tensor) {
        adopt(shape: other.shape, format: other.format)
        data.update(from: other.data, count: count)
        markModified()
    }

    public func clone() -> Tensor {
        let copy = Tensor(shape: shape, zeros: false)
        copy.copy(from: self)
        return copy
    }

    /// Returns `tensor` reshaped to `shape` if given, else a new tensor: the pattern layers use for
    /// their output buffers.
    /// The version moves: the caller is about to write new contents.
    static func reuse(_ tensor: Tensor?, shape: [Int], format: MemoryFormat? = nil) -> Tensor {
        let tensor = tensor ?? Tensor(shape: shape, zeros: false)
        if tensor.shape != shape || tensor.format != format { tensor.adopt(shape: shape, format: format) } else { tensor.markModified() }
        return tensor
    }
}

/// A learnable tensor and its gradient (accumulated by backward passes, cleared by `zeroGradient`).
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let value: Tensor
    public let gradient: Tensor

    public init(name: String, shape: [Int]) {
        self.name = name
        value = Tensor(shape: shape)
        gradient = Tensor(shape: shape)
    }

    public func zeroGradient() { gradient.fill(0) }
}
