import ArgumentParser
import Foundation
import NN

/// `--precision fp32|bf16`, shared by train, generate, embed and their benchmarks.
struct PrecisionOption: ParsableArguments {
    @Option(help: "The convolutions' arithmetic: fp32 (default) or bf16 (mixed precision; needs AVX512-BF16, else runs in fp32 with a note; a note also where bf16 times slower than fp32).")
    var precision = "fp32"

    func validate() throws {
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be fp32 or bf16") }
    }

    /// The precision this CPU can run, saying so on stderr when bf16 falls back to fp32.
    var resolved: Precision {
        let (precision, note) = Precision.resolve(Precision(rawValue: self.precision)!)
        if let note { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        return precision
    }
}
