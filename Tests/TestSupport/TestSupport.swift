import Formats
import Foundation
import Imaging
import XCTest

/// A fresh directory under the system temporary directory, removed by `remove()`.
public struct TemporaryDirectory {
    public let url: URL
    public var path: String { url.path }

    public init(_ label: String = "darkroom-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ relative: String) -> URL { url.appendingPathComponent(relative) }

    @discardableResult
    public func write(_ relative: String, _ bytes: [UInt8]) throws -> URL {
        let target = file(relative)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: target)
        return target
    }

    public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Deterministic test pictures: smooth shapes, so resizing and re-encoding keep them similar.
public enum Pictures {
    /// A pattern that differs visibly with `seed`: a gradient plus a bright rectangle.
    public static func pattern(width: Int, height: Int, channels: Int, seed: Int) -> PixelImage {
        var generator = SeededRandom(seed: UInt64(seed))
        let rx = Int(generator.next() % UInt64(max(width / 2, 1))), ry = Int(generator.next() % UInt64(max(height / 2, 1)))
        let rw = max(width / 4, 1) + Int(generator.next() % UInt64(max(width / 4, 1)))
        let rh = max(height / 4, 1) + Int(generator.next() % UInt64(max(height / 4, 1)))
        let direction = Int(generator.next() % 4)
        var image = PixelImage(width: width, height: height, channels: channels)
        for y in 0..<height {
            for x in 0..<width {
                let along = [x, y, width - 1 - x, height - 1 - y][direction]
                let span = max([width, height, width, height][direction] - 1, 1)
                var value = 30 + 150 * along / span
                if (rx..<rx + rw).contains(x) && (ry..<ry + rh).contains(y) { value = 240 }
                for c in 0..<channels {
                    let shifted = c == 3 ? 255 : min(255, value + c * 7)
                    image.pixels[(y * width + x) * channels + c] = UInt8(shifted)
                }
            }
        }
        return image
    }

    /// A symbolic icon: RGB all black, the shape (a ring and a bar) only in alpha, drawn from
    /// normalised coordinates so every size shows the same shape.
    public static func symbolicIcon(size: Int, variant: Int = 0) -> PixelImage {
        var image = PixelImage(width: size, height: size, channels: 4)
        for y in 0..<size {
            for x in 0..<size {
                let u = (Double(x) + 0.5) / Double(size), v = (Double(y) + 0.5) / Double(size)
                let du: Double = u - 0.5, dv: Double = v - 0.55
                let radius: Double = (du * du + dv * dv).squareRoot()
                let ring = radius > 0.25 && radius < 0.38
                let topBar = v > 0.08 && v < 0.2 && u > 0.15 && u < 0.6
                let sideBar = u > 0.75 && u < 0.9 && v > 0.1 && v < 0.9
                let bar = variant == 0 ? topBar : sideBar
                image.pixels[(y * size + x) * 4 + 3] = ring || bar ? 255 : 0
            }
        }
        return image
    }

    /// Uniform noise: maximally different from every other picture.
    public static func noise(width: Int, height: Int, channels: Int, seed: Int) -> PixelImage {
        var generator = SeededRandom(seed: UInt64(seed))
        return PixelImage(width: width, height: height, channels: channels,
                          pixels: (0..<width * height * channels).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
    }
}

/// Pillow and NumPy, through Debian's python3, as an independent reference.
public enum PillowReference {
    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("pillow_reference.py").path

    /// The interpreter with Pillow and NumPy, or nil.
    public static let python: String? = {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: candidate) {
            if (try? Process.output(candidate, ["-c", "import PIL, numpy"])) != nil { return candidate }
        }
        return nil
    }()

    /// Runs the reference script; skips the test when Pillow is not installed (CI installs it).
    public static func run(_ arguments: [String]) throws -> String {
        guard let python else { throw XCTSkip("Pillow/NumPy not installed (apt-get install python3-pil python3-numpy)") }
        return try Process.output(python, [script] + arguments)
    }
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let command: String
    public let status: Int32
    public let output: String
    public var description: String { "\(command) exited \(status): \(output)" }
}

extension Process {
    /// Runs a program to completion; returns stdout, throws with stderr on a non-zero exit.
    public static func output(_ executable: String, _ arguments: [String]) throws -> String {
        let result = try runCapturing(executable, arguments)
        guard result.status == 0 else {
            throw ProcessFailure(command: ([executable] + arguments).joined(separator: " "), status: result.status, output: result.stderr + result.stdout)
        }
        return result.stdout
    }

    public static func runCapturing(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        // stderr goes to a file so a chatty child can never block on a full pipe we are not reading.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errHandle.close()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Runs a program with stdout and stderr into one file, as `> log 2>&1` would; returns the exit
    /// status and that file's text, in the order the program wrote it.
    public static func runMerged(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let logURL = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: logURL) }
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        process.waitUntilExit()
        try log.close()
        return (process.terminationStatus, String(decoding: (try? Data(contentsOf: logURL)) ?? Data(), as: UTF8.self))
    }
}

/// The built `darkroom` executable, beside the test bundle in the build folder.
public enum DarkroomBinary {
    public static var path: String {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("darkroom"),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("darkroom"),
            Bundle.main.bundleURL.appendingPathComponent("darkroom"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }?.path ?? candidates[0].path
    }

    /// Runs darkroom with arguments; returns exit status, stdout and stderr.
    public static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try Process.runCapturing(path, arguments)
    }
}
