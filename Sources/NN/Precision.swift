import CDNNL
import Foundation
import Formats

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
    /// (bf16 without AVX512-BF16 runs in fp32) or when bf16 is measurably slower here than fp32.
    /// A slower bf16 still runs in bf16: the request is kept, since a timing must not decide a
    /// run's arithmetic, but the user learns that fp32 is the faster choice.
    public static func resolve(_ requested: Precision, bf16Supported: Bool = Precision.bf16Supported,
                               bf16Speedup: () -> Double = Precision.measuredBF16Speedup) -> (precision: Precision, note: String?) {
        guard requested == .bf16 else { return (requested, nil) }
        guard bf16Supported else {
            return (.fp32, "note: this CPU lacks AVX512-BF16 (oneDNN's effective ISA is \(isaName)); running in fp32")
        }
        let speedup = bf16Speedup()
        guard speedup < 0.9 else { return (.bf16, nil) }
        return (.bf16, "note: this CPU runs bf16 convolutions at \(String(format: "%.2f", speedup))× its fp32 speed (a DCGAN layer, timed just now; "
                    + "AVX512-BF16 without AMX can be slower than fp32); running in bf16 as asked, but --precision fp32 is faster here")
    }

    /// bf16's convolution speed over fp32's on this CPU: D's 128 → 256 layer (4×4, stride 2,
    /// 16×16 → 8×8, batch 16), forward, backward-data and backward-weights, the faster of two
    /// rounds each after a warm-up, alternating. About 0.1 s. Having AVX512-BF16 does not make
    /// bf16 faster: one Intel Xeon without AMX issues `vdpbf16ps` at a quarter of its fp32 FMA
    /// rate, and its bf16 convolutions run at about half fp32's speed (PyTorch's too).
    public static func measuredBF16Speedup() -> Double {
        var random = SeededRandom(seed: 1)
        let input = Tensor(shape: [16, 128, 16, 16], zeros: false)
        let gradient = Tensor(shape: [16, 256, 8, 8], zeros: false)
        Initialization.normal(input, mean: 0, standardDeviation: 1, random: &random)
        Initialization.normal(gradient, mean: 0, standardDeviation: 1, random: &random)
        let layers = [Precision.fp32, .bf16].map { precision -> Conv2d in
            let layer = Conv2d(128, 256, kernel: 4, stride: 2, padding: 1, bias: false, backend: .fast)
            Initialization.normal(layer.weight.value, mean: 0, standardDeviation: 0.02, random: &random)
            layer.precision = precision
            return layer
        }
        func seconds(_ layer: Conv2d) -> Double {
            let started = DispatchTime.now().uptimeNanoseconds
            _ = layer.forward(input)
            _ = layer.backward(gradient)
            return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        }
        var best = [Double.infinity, .infinity]
        for round in 0..<3 {
            for (index, layer) in layers.enumerated() {
                let time = seconds(layer)
                if round > 0 { best[index] = min(best[index], time) }
            }
        }
        return best[0] / best[1]
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
