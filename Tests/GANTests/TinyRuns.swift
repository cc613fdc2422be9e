import Foundation
@testable import GAN
import TestSupport
import XCTest

extension TrainOptions {
    /// A run small enough for a test: batches of 8, nz 16, ngf = ndf = 8, 2 epochs, every step logged.
    static func tiny(data: String, out: String) -> TrainOptions {
        var options = TrainOptions(data: data, out: out)
        options.epochs = 2
        options.batch = 8
        options.nz = 16
        options.ngf = 8
        options.ndf = 8
        options.logEvery = 1
        return options
    }
}

enum TinyRuns {
    /// Trains `configure`d tiny runs twice on a tiny dataset, once straight and once stopped after
    /// `stopAfter` iterations and resumed; returns both run folders.
    static func straightAndResumed(in directory: TemporaryDirectory, stopAfter: Int = 4,
                                   _ configure: (inout TrainOptions) -> Void) throws -> (straight: String, resumed: String) {
        let data = try writeTinyDataset(directory)
        let straight = directory.file("straight").path, resumed = directory.file("resumed").path
        func configured(_ out: String) -> TrainOptions {
            var options = TrainOptions.tiny(data: data, out: out)
            configure(&options)
            return options
        }
        XCTAssertEqual(try TrainingRun(options: configured(straight)).train(), .finished)
        var steps = 0
        XCTAssertEqual(try TrainingRun(options: configured(resumed)).train(stopRequested: { steps += 1; return steps == stopAfter }), .stopped)
        var resuming = configured(resumed)
        resuming.resume = true
        XCTAssertEqual(try TrainingRun(options: resuming).train(), .finished)
        return (straight, resumed)
    }

    /// Each logged line's losses and mean D probabilities.
    static func loggedFigures(_ run: String) throws -> [[Float]] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            let line = try JSONDecoder().decode(MetricsLine.self, from: Data($0.utf8))
            return [line.lossD, line.lossG, line.dReal, line.dFake]
        }
    }
}
