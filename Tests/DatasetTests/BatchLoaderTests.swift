import Catalog
import Dataset
import Foundation
import Imaging
import TestSupport
import XCTest

final class BatchLoaderTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var dataset: String { directory.file("dataset").path }

    override func setUpWithError() throws {
        directory = try TemporaryDirectory("loader")
        for index in 0..<37 {
            try directory.write("images/\(index).png", try PNG.encode(Pictures.noise(width: 6, height: 6, channels: 3, seed: index)))
        }
        let database = try CatalogDatabase(path: directory.file("catalog.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("images").path)
        var options = PrepareOptions(size: 6, channels: 3)
        options.shardBytes = 6 * 6 * 3 * 10  // four shards
        try DatasetPreparer(database: database, options: options).prepare(into: dataset)
    }

    override func tearDown() { directory.remove() }

    private func batches(_ loader: BatchLoader, epoch: Int, start: Int = 0) -> [Batch] { Array(loader.epoch(epoch, startingAt: start)) }

    func testAnEpochVisitsEveryImageOnceInASeededOrder() throws {
        let loader = try BatchLoader(directory: dataset, batchSize: 8, seed: 1, dropLast: false)
        let epoch = batches(loader, epoch: 0)
        XCTAssertEqual(epoch.map(\.count), [8, 8, 8, 8, 5])
        XCTAssertEqual(epoch.flatMap(\.rows).sorted(), Array(0..<37))
        XCTAssertEqual(batches(loader, epoch: 0).flatMap(\.rows), epoch.flatMap(\.rows), "same seed and epoch, same order")
        XCTAssertNotEqual(batches(loader, epoch: 1).flatMap(\.rows), epoch.flatMap(\.rows), "a new epoch reshuffles")
        let dropping = try BatchLoader(directory: dataset, batchSize: 8, seed: 1)
        XCTAssertEqual(dropping.batchesPerEpoch, 4)
        XCTAssertEqual(batches(dropping, epoch: 0).map(\.count), [8, 8, 8, 8])
    }

    func testBatchesAreNormalisedNCHW() throws {
        let loader = try BatchLoader(directory: dataset, batchSize: 4, seed: 3)
        let batch = try XCTUnwrap(loader.epoch(0).next())
        XCTAssertEqual(batch.images.count, 4 * 3 * 6 * 6)
        XCTAssertTrue(batch.images.allSatisfy { (-1...1).contains($0) })
        // Row r is r.png (ids follow the walk, which sorts names bytewise; map through index.csv).
        let index = try String(contentsOfFile: dataset + "/index.csv", encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        let name = String(index[batch.rows[0]][2])
        let seed = Int(name.dropLast(4))!
        let pixels = Pictures.noise(width: 6, height: 6, channels: 3, seed: seed).pixels
        for c in 0..<3 {
            for pixel in 0..<36 {
                XCTAssertEqual(batch.images[c * 36 + pixel], Float(pixels[pixel * 3 + c]) / 127.5 - 1)
            }
        }
    }

    func testStreamingShardsGivesTheSameBatchContentsAsResidentData() throws {
        let resident = try BatchLoader(directory: dataset, batchSize: 5, seed: 9)
        let streaming = try BatchLoader(directory: dataset, batchSize: 5, seed: 9, memoryBudget: 100)
        let streamed = batches(streaming, epoch: 2)
        XCTAssertEqual(streamed.flatMap(\.rows).count, 35)
        XCTAssertEqual(Set(streamed.flatMap(\.rows)).count, 35)
        // Same rows must carry the same pixels whichever way they were read.
        var byRow: [Int: [Float]] = [:]
        for batch in batches(resident, epoch: 0) {
            for (slot, row) in batch.rows.enumerated() { byRow[row] = Array(batch.images[slot * 108..<(slot + 1) * 108]) }
        }
        for batch in streamed {
            for (slot, row) in batch.rows.enumerated() where byRow[row] != nil {
                XCTAssertEqual(Array(batch.images[slot * 108..<(slot + 1) * 108]), byRow[row]!)
            }
        }
    }

    func testResumingMidEpochContinuesTheSameSequence() throws {
        let loader = try BatchLoader(directory: dataset, batchSize: 6, seed: 4)
        let whole = batches(loader, epoch: 3)
        let tail = batches(loader, epoch: 3, start: 2)
        XCTAssertEqual(tail.map(\.rows), whole.dropFirst(2).map(\.rows))
        XCTAssertEqual(tail.first?.images, whole[2].images)
    }

    func testAbandoningAnEpochEarlyStopsItsProducer() throws {
        let loader = try BatchLoader(directory: dataset, batchSize: 2, seed: 4)
        for _ in 0..<20 {
            let epoch = loader.epoch(0)
            _ = epoch.next()
            epoch.cancel()
        }
        XCTAssertEqual(batches(loader, epoch: 0).count, 18)
    }
}
