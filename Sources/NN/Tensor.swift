import Foundation

/// A dense Float32 tensor with a shape (NCHW for images, [N, F] for features). Reference
/// semantics on purpose: layers keep their output and gradient tensors and reuse them from one
/// iteration to the next, so the steady state allocates nothing. Storage is 64-byte aligned for
/// SIMD and oneDNN.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public private(set) var count: Int
    public private(set) var data: UnsafeMutablePointer<Float>
    private var capacity: Int

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

    /// Changes the shape, reallocating only when the storage is too small. Contents are undefined.
    public func reshape(to newShape: [Int]) {
        let newCount = newShape.reduce(1, *)
        if newCount > capacity {
            free(data)
            data = Tensor.allocate(newCount)
            capacity = newCount
        }
        shape = newShape
        count = newCount
    }

    /// Same element count, new view of the dimensions (Flatten).
    public func viewAs(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "view \(newShape) does not hold \(count) elements")
        shape = newShape
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var values: [Float] { Array(buffer) }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copy(from other: Tensor) {
        reshape(to: other.shape)
        data.update(from: other.data, count: count)
    }

    public func clone() -> Tensor {
        let copy = Tensor(shape: shape, zeros: false)
        copy.data.update(from: data, count: count)
        return copy
    }

    /// Returns `tensor` reshaped to `shape` if given, else a new tensor: the pattern layers use for
    /// their output buffers.
    static func reuse(_ tensor: Tensor?, shape: [Int]) -> Tensor {
        guard let tensor else { return Tensor(shape: shape, zeros: false) }
        if tensor.shape != shape { tensor.reshape(to: shape) }
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
