import ArgumentParser
import Catalog
import Dataset
import GAN
import NN
import Imaging
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks; each prints JSON on stdout.",
        subcommands: [CatalogBench.self, PrepareBench.self, TrainStepBench.self, GenerateBench.self, EmbedBench.self])

    struct CatalogBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "catalog", abstract: "Catalogue ROOT into a scratch database, then re-scan it unchanged.")

        @Argument(help: "The folder to catalogue.")
        var root: String

        @Option(help: "Files inspected in parallel.")
        var jobs = ProcessInfo.processInfo.activeProcessorCount

        func run() throws {
            print(try Console.json(try CatalogBenchmark.run(root: root, options: CatalogOptions(jobs: jobs))))
        }
    }

    struct PrepareBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prepare", abstract: "Prepare the catalogue's usable images into a scratch folder; images/s.")

        @Option(help: "The catalogue database.")
        var db = "darkroom.sqlite"

        @Option var size = 32
        @Option var channels = 1
        @Option var limit: Int?

        @Option(help: "Images decoded in parallel.")
        var jobs = ProcessInfo.processInfo.activeProcessorCount

        @Option(help: "JPEG decoding: fast (DCT-scaled) or full.")
        var decode = "fast"

        func validate() throws {
            guard DecodeMode(rawValue: decode) != nil else { throw ValidationError("--decode must be fast or full") }
        }

        func run() throws {
            // Every usable image, as the Pillow baseline takes them all (no --min-size skipping).
            let options = PrepareOptions(size: size, channels: channels, limit: limit, jobs: jobs, minSize: 0, decode: DecodeMode(rawValue: decode)!)
            print(try Console.json(try PrepareBenchmark.run(database: try CatalogDatabase(path: db), options: options)))
        }
    }

    struct TrainStepBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-step",
            abstract: "Time full DCGAN iterations (D on real and fake, G through D) on random data; img/s and GFLOP/s.")

        @Option var size = 64
        @Option var channels = 3
        @Option var batch = 64
        @Option(help: "Timed iterations (after two warm-up ones).")
        var iterations = 5
        @Option var nz = 100
        @Option var ngf = 64
        @Option var ndf = 64
        @Option(help: "fast (oneDNN) or reference (plain Swift).")
        var backend = "fast"
        @Flag(help: "Time every layer's forward and backward.")
        var profile = false
        @OptionGroup var remedies: RemedyOptions
        @OptionGroup var precision: PrecisionOption

        func validate() throws {
            guard DCGANConfiguration.supportedSizes[size] != nil else { throw ValidationError("--size must be 32, 64 or 128") }
            guard channels == 1 || channels == 3 else { throw ValidationError("--channels must be 1 or 3") }
            guard Backend(rawValue: backend) != nil else { throw ValidationError("--backend must be fast or reference") }
            guard batch >= 1, iterations >= 1 else { throw ValidationError("--batch and --iterations must be at least 1") }
        }

        func run() throws {
            var options = TrainOptions(data: "", out: "")
            options.step = StepOptions(backend: Backend(rawValue: backend)!)
            remedies.apply(to: &options)
            options.step.precision = precision.resolved
            let configuration = DCGANConfiguration(imageSize: size, channels: channels, nz: nz, ngf: ngf, ndf: ndf, latent: options.noise,
                                                   discriminatorNorm: options.resolvedDiscriminatorNorm, minibatchStd: options.minibatchStd,
                                                   generatorKind: options.generator)
            print(try Console.json(TrainStepBenchmark.run(configuration: configuration, step: options.step, batch: batch, iterations: iterations,
                                                          profile: profile)))
        }
    }

    struct ForwardOptions: ParsableArguments {
        @Option var size = 64
        @Option var channels = 3
        @Option var batch = 256
        @Option var iterations = 5
        @Option var nz = 100
        @Option var ngf = 64
        @Option var ndf = 64

        func validate() throws {
            guard DCGANConfiguration.supportedSizes[size] != nil else { throw ValidationError("--size must be 32, 64 or 128") }
            guard channels == 1 || channels == 3, batch >= 1, iterations >= 1 else { throw ValidationError("--channels 1 or 3; --batch and --iterations positive") }
        }

        var configuration: DCGANConfiguration { DCGANConfiguration(imageSize: size, channels: channels, nz: nz, ngf: ngf, ndf: ndf) }
    }

    struct GenerateBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generator forward passes (evaluation mode); img/s.")
        @OptionGroup var options: ForwardOptions
        @OptionGroup var precision: PrecisionOption
        func run() throws {
            print(try Console.json(ForwardBenchmark.generator(options.configuration, batch: options.batch, iterations: options.iterations,
                                                            precision: precision.resolved)))
        }
    }

    struct EmbedBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "embed", abstract: "Discriminator feature extraction (evaluation mode); img/s.")
        @OptionGroup var options: ForwardOptions
        @OptionGroup var precision: PrecisionOption
        func run() throws {
            print(try Console.json(ForwardBenchmark.embedding(options.configuration, batch: options.batch, iterations: options.iterations,
                                                            precision: precision.resolved)))
        }
    }
}
