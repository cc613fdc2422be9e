import CDNNL

/// The arithmetic of the convolutions. bf16: operands (activations, weights, gradients) rounded
/// to bfloat16 on their way into a convolution, products accumulated in fp32, results written in
/// fp32 except the activations and their gradients between two convolutions
/// (`Sequential.setPrecision`); master weights, optimiser moments, normalisation statistics and
/// losses stay fp32, as in PyTorch's autocast. Needs AVX512-BF16 (oneDNN's `avx512_core_bf16` kernels).
public enum Precision: String, Codable, Sendable, CaseIterable {
    case fp32, bf16

    var dataType: dnnl_data_type_t { self == .bf16 ? dnnl_bf16 : dnnl_f32 }

    /// Whether this CPU runs bf16 convolutions natively (oneDNN's own dispatch decides).
    public static var bf16Supported: Bool { hasISA(dnnl_cpu_isa_avx512_core_bf16) }

    /// Whether the CPU has AMX (oneDNN's `avx512_core_amx`), where bf16 convolutions run as matmuls.
    static var amxSupported: Bool { hasISA(dnnl_cpu_isa_avx512_core_amx) }

    /// Whether oneDNN computes bf16 at all here (AVX-512). Without AVX512-BF16 it emulates it,
    /// 2–10× slower than fp32 on the DCGAN shapes (an Intel Xeon, batch 4), so `resolve` runs fp32
    /// there; the library still computes bf16 when asked, so the tests check the bf16 kernels there.
    public static var bf16Computable: Bool { hasISA(dnnl_cpu_isa_avx512_core) }

    private static func hasISA(_ isa: dnnl_cpu_isa_t) -> Bool {
        dnnl_get_effective_cpu_isa().rawValue & isa.rawValue == isa.rawValue
    }

    /// The precision a run can use on this CPU, and a note when the request cannot be met
    /// (bf16 without AVX512-BF16 runs in fp32).
    public static func resolve(_ requested: Precision, bf16Supported: Bool = Precision.bf16Supported) -> (precision: Precision, note: String?) {
        guard requested == .bf16, !bf16Supported else { return (requested, nil) }
        return (.fp32, "note: this CPU lacks AVX512-BF16 (oneDNN's effective ISA is \(isaName)); running in fp32")
    }

    static var isaName: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2: return "avx2"
        default: return "isa 0x\(String(dnnl_get_effective_cpu_isa().rawValue, radix: 16))"
        }
    }
}
