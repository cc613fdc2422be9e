import CDNNL
import Foundation

/// The thin Swift edge over oneDNN's C API: the only file that touches it. Above it, code sees
/// `MemoryFormat`, `Primitive` and `Reorder`, never a C pointer.
enum DNNL {
    /// One CPU engine and in-order stream for the process; oneDNN's OpenMP threads do the work.
    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine_create")
        return engine!
    }()

    nonisolated(unsafe) static let stream: dnnl_stream_t = {
        var stream: dnnl_stream_t?
        check(dnnl_stream_create(&stream, DNNL.engine, dnnl_stream_default_flags.rawValue), "stream_create")
        return stream!
    }()

    /// oneDNN fails only on programming errors here (shapes are validated before), so stop loudly.
    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        if status != dnnl_success { fatalError("oneDNN \(what()) failed with status \(status.rawValue)") }
    }

    /// `values` as a `dnnl_dims_t` for the length of a call: a pointer to the whole array (a
    /// pointer to a tuple's first element is valid for that element only, and an optimised build
    /// may not keep the rest beside it).
    static func withDims<Result>(_ values: [Int], _ body: (UnsafePointer<dnnl_dim_t>) -> Result) -> Result {
        precondition(values.count <= 12, "oneDNN takes at most 12 dimensions")
        return withUnsafeTemporaryAllocation(of: dnnl_dim_t.self, capacity: 12) { dims in
            for index in 0..<12 { dims[index] = index < values.count ? dnnl_dim_t(values[index]) : 0 }
            return body(dims.baseAddress!)
        }
    }
}

/// A memory layout for a tensor of given logical dimensions: plain (NCHW, OIHW, …) or one of
/// oneDNN's blocked layouts (nChw8c, …).
public struct MemoryFormat: Equatable, @unchecked Sendable {
    var descriptor: dnnl_memory_desc_t

    init(_ descriptor: dnnl_memory_desc_t) { self.descriptor = descriptor }

    /// Plain row-major layout of `dims` (NCHW for 4-D).
    public static func plain(_ dims: [Int], _ type: Precision = .fp32) -> MemoryFormat {
        tagged(dims, [dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd][dims.count - 1], type)
    }

    /// Channels-last layout of 4-D `dims` (NHWC for [N, C, H, W]; OHWI for a weight [O, C, k, k]).
    static func channelsLast(_ dims: [Int], _ type: Precision = .fp32) -> MemoryFormat { tagged(dims, dnnl_acdb, type) }

    /// Channel-blocked layout of 4-D `dims` (nChw16c: 16 channels innermost, an AVX-512 vector).
    static func channelBlocked(_ dims: [Int], _ type: Precision = .fp32) -> MemoryFormat { tagged(dims, dnnl_aBcd16b, type) }

    /// Let the primitive choose (blocked layouts for convolutions).
    static func any(_ dims: [Int], _ type: Precision = .fp32) -> MemoryFormat { tagged(dims, dnnl_format_tag_any, type) }

    /// Row-major `dims` with explicit strides (in elements): a transposed view of a matrix.
    static func strided(_ dims: [Int], strides: [Int], _ type: Precision = .fp32) -> MemoryFormat {
        var descriptor = dnnl_memory_desc_t()
        let status = DNNL.withDims(dims) { values in
            DNNL.withDims(strides) { steps in dnnl_memory_desc_init_by_strides(&descriptor, Int32(dims.count), values, type.dataType, steps) }
        }
        DNNL.check(status, "memory_desc_init_by_strides \(dims) \(strides)")
        return MemoryFormat(descriptor)
    }

    static func tagged(_ dims: [Int], _ tag: dnnl_format_tag_t, _ type: Precision = .fp32) -> MemoryFormat {
        var descriptor = dnnl_memory_desc_t()
        let status = DNNL.withDims(dims) { values in dnnl_memory_desc_init_by_tag(&descriptor, Int32(dims.count), values, type.dataType, tag) }
        DNNL.check(status, "memory_desc_init_by_tag \(dims)")
        return MemoryFormat(descriptor)
    }

    /// Float-sized slots of storage, including any channel padding of blocked layouts (a bf16
    /// layout of n values takes n/2 of them: a Tensor holds it in its Float storage as raw bytes).
    public var elementCount: Int {
        var copy = descriptor
        return (dnnl_memory_desc_get_size(&copy) + MemoryLayout<Float>.stride - 1) / MemoryLayout<Float>.stride
    }

    /// The element type of this layout.
    public var precision: Precision { descriptor.data_type == dnnl_bf16 ? .bf16 : .fp32 }

    /// The same layout holding another element type (oneDNN gives blocking and padding in elements).
    func holding(_ type: Precision) -> MemoryFormat {
        var copy = descriptor
        copy.data_type = type.dataType
        return MemoryFormat(copy)
    }

    public var dims: [Int] {
        withUnsafeBytes(of: descriptor.dims) { raw in Array(raw.bindMemory(to: dnnl_dim_t.self).prefix(Int(descriptor.ndims)).map(Int.init)) }
    }

    /// This layout for other dimensions of the same rank (a weight [O, C, k, k] laid out like
    /// activations [N, C, k, k]), when it is a plain, channels-last or channel-blocked one; else nil.
    func sameLayout(for otherDims: [Int]) -> MemoryFormat? {
        guard dims.count == 4, otherDims.count == 4 else { return nil }
        let tags = [dnnl_abcd, dnnl_aBcd16b, dnnl_aBcd8b, dnnl_aBcd4b, dnnl_acdb]
        return tags.first { self == MemoryFormat.tagged(dims, $0) }.map { MemoryFormat.tagged(otherDims, $0) }
    }

    public var isPlain: Bool { self == MemoryFormat.plain(dims) }

    /// The part of this layout of `dims` starting at `offsets`, addressed from the same base
    /// pointer; nil where oneDNN cannot describe it (an offset inside a channel block).
    func window(_ dims: [Int], at offsets: [Int]) -> MemoryFormat? {
        var parent = descriptor, window = dnnl_memory_desc_t()
        let status = DNNL.withDims(dims) { values in
            DNNL.withDims(offsets) { starts in dnnl_memory_desc_init_submemory(&window, &parent, values, starts) }
        }
        return status == dnnl_success ? MemoryFormat(window) : nil
    }

    /// The same storage seen with other dimensions (one split in two, unit ones added); nil where
    /// oneDNN cannot.
    func reshaped(_ dims: [Int]) -> MemoryFormat? {
        var source = descriptor, reshaped = dnnl_memory_desc_t()
        let status = DNNL.withDims(dims) { values in dnnl_memory_desc_reshape(&reshaped, &source, Int32(dims.count), values) }
        return status == dnnl_success ? MemoryFormat(reshaped) : nil
    }

    /// The same storage with its first two axes swapped ([N, C, H, W] seen as [C, N, H, W]): oneDNN
    /// permutes the descriptor, not the data.
    func swappingFirstAxes() -> MemoryFormat {
        var source = descriptor, swapped = dnnl_memory_desc_t()
        var order = (0..<Int32(descriptor.ndims)).map { $0 }
        order.swapAt(0, 1)
        DNNL.check(dnnl_memory_desc_permute_axes(&swapped, &source, order), "memory_desc_permute_axes \(dims)")
        return MemoryFormat(swapped)
    }

    public static func == (lhs: MemoryFormat, rhs: MemoryFormat) -> Bool {
        var a = lhs.descriptor, b = rhs.descriptor
        return dnnl_memory_desc_equal(&a, &b) != 0
    }
}

/// Argument slots of a primitive execution.
enum Argument {
    static let source = darkroom_arg_src, destination = darkroom_arg_dst, weights = darkroom_arg_weights
    static let mean = darkroom_arg_mean, variance = darkroom_arg_variance
    static let scale = darkroom_arg_scale, shift = darkroom_arg_shift
    static let sourceGradient = darkroom_arg_diff_src, destinationGradient = darkroom_arg_diff_dst
    static let weightsGradient = darkroom_arg_diff_weights
    static let scaleGradient = darkroom_arg_diff_scale, shiftGradient = darkroom_arg_diff_shift
}

/// Seconds spent in oneDNN by primitive kind ("convolution", "reorder", "batch_normalization",
/// "eltwise", …, and "sgemm" for its GEMM) while recording: what a training step spends around
/// its convolutions (`bench train-step --profile`).
public enum PrimitiveTimes {
    nonisolated(unsafe) private static var recording = false
    nonisolated(unsafe) private static var seconds: [String: Double] = [:]
    private static let lock = NSLock()

    public static func start() {
        lock.lock()
        seconds = [:]
        recording = true
        lock.unlock()
    }

    /// Stops recording; the seconds by kind since `start`.
    public static func stop() -> [String: Double] {
        lock.lock()
        defer { lock.unlock() }
        recording = false
        return seconds
    }

    /// Runs `body`, adding its time to `kind` while recording.
    static func time<Result>(_ kind: @autoclosure () -> String, _ body: () -> Result) -> Result {
        guard recording else { return body() }
        let started = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        lock.lock()
        seconds[kind(), default: 0] += elapsed
        lock.unlock()
        return result
    }
}

/// A created primitive with its descriptor, and one memory object per argument, re-pointed at the
/// caller's buffers on each execution (so nothing is allocated in the steady state).
final class Primitive {
    private let descriptor: dnnl_primitive_desc_t
    private let primitive: dnnl_primitive_t
    private var memories: [Int32: dnnl_memory_t] = [:]
    /// For `PrimitiveTimes`.
    private lazy var kind: String = {
        var kind = dnnl_undefined_primitive
        dnnl_primitive_desc_query(descriptor, dnnl_query_primitive_kind, 0, &kind)
        switch kind {
        case dnnl_convolution: return "convolution"
        case dnnl_reorder: return "reorder"
        case dnnl_batch_normalization: return "batch_normalization"
        case dnnl_eltwise: return "eltwise"
        case dnnl_matmul: return "matmul"
        case dnnl_inner_product: return "inner_product"
        default: return "other"
        }
    }()

    /// `operation` fills a oneDNN operation descriptor (convolution, batch normalisation, …).
    init<Operation>(_ operation: inout Operation, hint: Primitive? = nil) {
        var descriptor: dnnl_primitive_desc_t?
        withUnsafePointer(to: &operation) { pointer in
            DNNL.check(dnnl_primitive_desc_create(&descriptor, UnsafeRawPointer(pointer), nil, DNNL.engine, hint?.descriptor), "primitive_desc_create")
        }
        self.descriptor = descriptor!
        var primitive: dnnl_primitive_t?
        DNNL.check(dnnl_primitive_create(&primitive, descriptor), "primitive_create")
        self.primitive = primitive!
    }

    /// `accumulate`: destination += source (a sum post-op) instead of destination = source.
    init(reorderFrom source: MemoryFormat, to destination: MemoryFormat, accumulate: Bool = false) {
        var descriptor: dnnl_primitive_desc_t?
        var from = source.descriptor, to = destination.descriptor
        var attributes: dnnl_primitive_attr_t?
        if accumulate {
            var postOps: dnnl_post_ops_t?
            DNNL.check(dnnl_post_ops_create(&postOps), "post_ops_create")
            DNNL.check(dnnl_post_ops_append_sum(postOps, 1), "post_ops_append_sum")
            DNNL.check(dnnl_primitive_attr_create(&attributes), "primitive_attr_create")
            DNNL.check(dnnl_primitive_attr_set_post_ops(attributes, postOps), "primitive_attr_set_post_ops")
            dnnl_post_ops_destroy(postOps)
        }
        defer { if let attributes { dnnl_primitive_attr_destroy(attributes) } }
        DNNL.check(dnnl_reorder_primitive_desc_create(&descriptor, &from, DNNL.engine, &to, DNNL.engine, attributes), "reorder_primitive_desc_create")
        self.descriptor = descriptor!
        var primitive: dnnl_primitive_t?
        DNNL.check(dnnl_primitive_create(&primitive, descriptor), "primitive_create")
        self.primitive = primitive!
    }

    deinit {
        for memory in memories.values { dnnl_memory_destroy(memory) }
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    enum Query { case source, weights, destination, sourceGradient, weightsGradient, destinationGradient }

    /// The layout the primitive chose for one of its arguments.
    func format(_ query: Query) -> MemoryFormat {
        let what: dnnl_query_t
        switch query {
        case .source: what = dnnl_query_src_md
        case .weights: what = dnnl_query_weights_md
        case .destination: what = dnnl_query_dst_md
        case .sourceGradient: what = dnnl_query_diff_src_md
        case .weightsGradient: what = dnnl_query_diff_weights_md
        case .destinationGradient: what = dnnl_query_diff_dst_md
        }
        return MemoryFormat(dnnl_primitive_desc_query_md(descriptor, what, 0).pointee)
    }

    /// Runs with (slot, buffer, format) arguments and waits for the result.
    func execute(_ arguments: [(Int32, UnsafeMutablePointer<Float>, MemoryFormat)]) {
        execute(raw: arguments.map { ($0.0, UnsafeMutableRawPointer($0.1), $0.2) })
    }

    /// The same with untyped buffers (a bf16 operand is not Floats).
    func execute(raw arguments: [(Int32, UnsafeMutableRawPointer, MemoryFormat)]) {
        var execArguments: [dnnl_exec_arg_t] = []
        execArguments.reserveCapacity(arguments.count)
        for (slot, buffer, format) in arguments {
            let memory: dnnl_memory_t
            if let existing = memories[slot] {
                memory = existing
            } else {
                var created: dnnl_memory_t?
                var descriptor = format.descriptor
                DNNL.check(dnnl_memory_create(&created, &descriptor, DNNL.engine, buffer), "memory_create")
                memory = created!
                memories[slot] = memory
            }
            DNNL.check(dnnl_memory_set_data_handle(memory, buffer), "memory_set_data_handle")
            execArguments.append(dnnl_exec_arg_t(arg: slot, memory: memory))
        }
        PrimitiveTimes.time(kind) {
            DNNL.check(dnnl_primitive_execute(primitive, DNNL.stream, Int32(execArguments.count), execArguments), "primitive_execute")
            DNNL.check(dnnl_stream_wait(DNNL.stream), "stream_wait")
        }
    }

    // Operation descriptors, one constructor per primitive kind used by the fast path.

    static func convolutionForward(source: MemoryFormat, weights: MemoryFormat, destination: MemoryFormat, stride: Int, padding: Int) -> Primitive {
        var operation = dnnl_convolution_desc_t()
        var src = source.descriptor, wei = weights.descriptor, dst = destination.descriptor
        let status = DNNL.withDims([stride, stride]) { strides in
            DNNL.withDims([padding, padding]) { pads in
                dnnl_convolution_forward_desc_init(&operation, dnnl_forward_training, dnnl_convolution_direct, &src, &wei, nil, &dst, strides, pads, pads)
            }
        }
        DNNL.check(status, "convolution_forward_desc_init")
        return Primitive(&operation)
    }

    /// A stride-1 forward convolution (inference: nothing of it is kept for a backward pass) with
    /// taps `dilation` + 1 apart and its own padding before (above, left) and after (below, right)
    /// on each axis, [rows, columns]; no bias.
    static func unitStrideConvolution(source: MemoryFormat, weights: MemoryFormat, destination: MemoryFormat, dilation: Int = 0,
                                      padding: [Int], paddingAfter: [Int]) -> Primitive {
        var operation = dnnl_convolution_desc_t()
        var src = source.descriptor, wei = weights.descriptor, dst = destination.descriptor
        let status = DNNL.withDims([1, 1]) { strides in
            DNNL.withDims([dilation, dilation]) { dilates in
                DNNL.withDims(padding) { before in
                    DNNL.withDims(paddingAfter) { after in
                        dnnl_dilated_convolution_forward_desc_init(&operation, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei, nil, &dst,
                                                                   strides, dilates, before, after)
                    }
                }
            }
        }
        DNNL.check(status, "dilated_convolution_forward_desc_init")
        return Primitive(&operation)
    }

    static func convolutionBackwardData(sourceGradient: MemoryFormat, weights: MemoryFormat, destinationGradient: MemoryFormat,
                                        stride: Int, padding: Int, hint: Primitive) -> Primitive {
        var operation = dnnl_convolution_desc_t()
        var dsrc = sourceGradient.descriptor, wei = weights.descriptor, ddst = destinationGradient.descriptor
        let status = DNNL.withDims([stride, stride]) { strides in
            DNNL.withDims([padding, padding]) { pads in
                dnnl_convolution_backward_data_desc_init(&operation, dnnl_convolution_direct, &dsrc, &wei, &ddst, strides, pads, pads)
            }
        }
        DNNL.check(status, "convolution_backward_data_desc_init")
        return Primitive(&operation, hint: hint)
    }

    static func convolutionBackwardWeights(source: MemoryFormat, weightsGradient: MemoryFormat, destinationGradient: MemoryFormat,
                                           stride: Int, padding: Int, hint: Primitive) -> Primitive {
        var operation = dnnl_convolution_desc_t()
        var src = source.descriptor, dwei = weightsGradient.descriptor, ddst = destinationGradient.descriptor
        let status = DNNL.withDims([stride, stride]) { strides in
            DNNL.withDims([padding, padding]) { pads in
                dnnl_convolution_backward_weights_desc_init(&operation, dnnl_convolution_direct, &src, &dwei, nil, &ddst, strides, pads, pads)
            }
        }
        DNNL.check(status, "convolution_backward_weights_desc_init")
        return Primitive(&operation, hint: hint)
    }

    /// C [M, N] = A [M, K] · B [K, N]; a transposed operand is a strided view.
    static func matmul(a: MemoryFormat, b: MemoryFormat, c: MemoryFormat) -> Primitive {
        var operation = dnnl_matmul_desc_t()
        var src = a.descriptor, wei = b.descriptor, dst = c.descriptor
        DNNL.check(dnnl_matmul_desc_init(&operation, &src, &wei, nil, &dst), "matmul_desc_init")
        return Primitive(&operation)
    }

    /// Batch normalisation with scale and shift; `globalStatistics` uses given mean/variance (evaluation).
    static func batchNormalizationForward(data: MemoryFormat, epsilon: Float, globalStatistics: Bool) -> Primitive {
        var operation = dnnl_batch_normalization_desc_t()
        var md = data.descriptor
        var flags = dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
        if globalStatistics { flags |= dnnl_use_global_stats.rawValue }
        DNNL.check(dnnl_batch_normalization_forward_desc_init(&operation, globalStatistics ? dnnl_forward_inference : dnnl_forward_training,
                                                              &md, epsilon, flags), "batch_normalization_forward_desc_init")
        return Primitive(&operation)
    }

    static func batchNormalizationBackward(data: MemoryFormat, epsilon: Float, hint: Primitive) -> Primitive {
        var operation = dnnl_batch_normalization_desc_t()
        var diff = data.descriptor, md = data.descriptor
        DNNL.check(dnnl_batch_normalization_backward_desc_init(&operation, dnnl_backward, &diff, &md, epsilon,
                                                               dnnl_use_scale.rawValue | dnnl_use_shift.rawValue), "batch_normalization_backward_desc_init")
        return Primitive(&operation, hint: hint)
    }
}

/// Element-wise functions oneDNN computes (forward and backward) on any layout.
public enum ElementwiseFunction: Sendable {
    case relu(slope: Float)
    case tanh
    case logistic

    var algorithm: dnnl_alg_kind_t {
        switch self {
        case .relu: return dnnl_eltwise_relu
        case .tanh: return dnnl_eltwise_tanh_use_dst_for_bwd
        case .logistic: return dnnl_eltwise_logistic_use_dst_for_bwd
        }
    }

    var alpha: Float {
        if case .relu(let slope) = self { return slope }
        return 0
    }

    /// Whether backward reads the output (tanh, logistic) rather than the input (relu).
    var backwardUsesOutput: Bool {
        if case .relu = self { return false }
        return true
    }
}

extension Primitive {
    static func elementwiseForward(_ function: ElementwiseFunction, data: MemoryFormat) -> Primitive {
        var operation = dnnl_eltwise_desc_t()
        var md = data.descriptor
        DNNL.check(dnnl_eltwise_forward_desc_init(&operation, dnnl_forward_training, function.algorithm, &md, function.alpha, 0),
                   "eltwise_forward_desc_init")
        return Primitive(&operation)
    }

    static func elementwiseBackward(_ function: ElementwiseFunction, data: MemoryFormat, hint: Primitive) -> Primitive {
        var operation = dnnl_eltwise_desc_t()
        var diff = data.descriptor, md = data.descriptor
        DNNL.check(dnnl_eltwise_backward_desc_init(&operation, function.algorithm, &diff, &md, function.alpha, 0),
                   "eltwise_backward_desc_init")
        return Primitive(&operation, hint: hint)
    }
}

extension Primitive {
    /// Max pooling for inference with square windows of `window` (stride = window).
    static func maxPooling(source: MemoryFormat, destination: MemoryFormat, window: Int) -> Primitive {
        var operation = dnnl_pooling_desc_t()
        var src = source.descriptor, dst = destination.descriptor
        let status = DNNL.withDims([window, window]) { steps in
            DNNL.withDims([0, 0]) { padding in
                dnnl_pooling_forward_desc_init(&operation, dnnl_forward_inference, dnnl_pooling_max, &src, &dst, steps, steps, padding, padding)
            }
        }
        DNNL.check(status, "pooling_forward_desc_init")
        return Primitive(&operation)
    }
}

/// Cached reorders between layouts. A handful of pairs occur in a network, so a linear search is fine.
enum Reorders {
    nonisolated(unsafe) private static var cache: [(from: MemoryFormat, to: MemoryFormat, accumulate: Bool, primitive: Primitive)] = []
    private static let lock = NSLock()

    /// output = input in another layout, or output += input with `accumulate`.
    static func run(from source: MemoryFormat, _ input: UnsafeMutablePointer<Float>, to destination: MemoryFormat, _ output: UnsafeMutablePointer<Float>,
                    accumulate: Bool = false) {
        lock.lock()
        let primitive: Primitive
        if let found = cache.first(where: { $0.from == source && $0.to == destination && $0.accumulate == accumulate }) {
            primitive = found.primitive
        } else {
            primitive = Primitive(reorderFrom: source, to: destination, accumulate: accumulate)
            cache.append((source, destination, accumulate, primitive))
        }
        primitive.execute([(Argument.source, input, source), (Argument.destination, output, destination)])
        lock.unlock()
    }
}

/// oneDNN's GEMM: C = alpha·op(A)·op(B) + beta·C, row-major (no OpenBLAS alongside oneDNN's threads).
public func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    PrimitiveTimes.time("sgemm") {
        DNNL.check(dnnl_sgemm(transposeA ? 84 : 78, transposeB ? 84 : 78, dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha,
                              a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc)), "sgemm")
    }
}

/// The linked oneDNN's version, e.g. "2.6.3".
public var oneDNNVersion: String {
    guard let version = dnnl_version()?.pointee else { return "unknown" }
    return "\(version.major).\(version.minor).\(version.patch)"
}
