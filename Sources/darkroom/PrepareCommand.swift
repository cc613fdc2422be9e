import ArgumentParser
import Catalog
import Dataset
import Foundation
import Imaging

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Decode, fit and normalise the catalogue's usable images into NumPy shards.")

    @Option(help: "The catalogue database.")
    var db = "darkroom.sqlite"

    @Option(help: "Side of the square samples, in pixels.")
    var size: Int

    @Option(help: "1 (gray, ITU-R 601-2 luma) or 3 (RGB).")
    var channels: Int

    @Option(help: "The output folder (replaced atomically).")
    var out: String

    @Option(help: "crop (centre square, default), pad (letterbox) or stretch.")
    var fit = "crop"

    @Flag(help: "Keep one image per near-duplicate group.")
    var dropNearDuplicates = false

    @Option(help: "At most this many images.")
    var limit: Int?

    @Option(help: "uint8 (raw pixels, normalised on load) or float32 (stored normalised).")
    var dtype = "uint8"

    @Option(help: "Images decoded in parallel.")
    var jobs = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Colour under transparency and around padded images: white, black, or R,G,B.")
    var background = "white"

    @Option(help: "Skip images whose shorter side is under N px (default: half of --size; 0 keeps all).")
    var minSize: Int?

    @Option(help: "JPEG decoding: fast (DCT-scaled to no less than --size, as Pillow's draft) or full (every pixel, as Pillow's full decode).")
    var decode = "fast"

    func validate() throws {
        guard (1...4096).contains(size) else { throw ValidationError("--size must be in 1...4096") }
        guard channels == 1 || channels == 3 else { throw ValidationError("--channels must be 1 or 3") }
        guard FitMode(rawValue: fit) != nil else { throw ValidationError("--fit must be crop, pad or stretch") }
        guard dtype == "uint8" || dtype == "float32" else { throw ValidationError("--dtype must be uint8 or float32") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard DecodeMode(rawValue: decode) != nil else { throw ValidationError("--decode must be fast or full") }
        if let minSize, minSize < 0 { throw ValidationError("--min-size must be 0 or more") }
        guard PixelImage.parseColor(background) != nil else { throw ValidationError("--background must be white, black or R,G,B (0-255)") }
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db): no such catalogue (run `darkroom catalog ROOT --db \(db)` first)") }
    }

    func run() throws {
        let options = PrepareOptions(size: size, channels: channels, fit: FitMode(rawValue: fit)!,
                                     dropNearDuplicates: dropNearDuplicates, limit: limit, dtype: dtype, jobs: jobs,
                                     background: PixelImage.parseColor(background)!, minSize: minSize,
                                     decode: DecodeMode(rawValue: decode)!)
        let started = Date()
        let manifest = try DatasetPreparer(database: try CatalogDatabase(path: db), options: options).prepare(
            into: out, warn: { Console.note("warning: \($0)") }, progress: { done, total in Console.progress("prepare: \(done)/\(total)") })
        Console.endProgress()
        let seconds = Date().timeIntervalSince(started)
        Console.note(String(format: "prepared %d images (%dx%dx%d %@, %d shards, %d skipped) in %.1fs (%.0f images/s) into %@",
                            manifest.count, size, size, channels, dtype, manifest.shards.count, manifest.skipped,
                            seconds, Double(manifest.count) / max(seconds, 1e-9), out))
    }
}
