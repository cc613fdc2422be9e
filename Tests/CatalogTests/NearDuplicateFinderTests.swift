import Catalog
import Formats
import TestSupport
import XCTest

final class NearDuplicateFinderTests: XCTestCase {
    /// The index must find exactly the pairs that comparing all pairs finds.
    func testMultiIndexHashingFindsExactlyTheBruteForcePairs() {
        var generator = SeededRandom(seed: 42)
        var hashes: [UInt64] = []
        for _ in 0..<300 {
            if hashes.isEmpty || generator.next() % 3 == 0 {
                hashes.append(generator.next())
            } else {
                // A perturbed copy of an earlier hash: 0-7 flipped bits.
                var hash = hashes[Int(generator.next() % UInt64(hashes.count))]
                for _ in 0..<Int(generator.next() % 8) { hash ^= 1 << (generator.next() % 64) }
                hashes.append(hash)
            }
        }
        for threshold in [0, 1, 4, 7, 12] {
            var expected: [NearDuplicateFinder.Pair] = []
            for a in 0..<hashes.count {
                for b in (a + 1)..<hashes.count {
                    let distance = (hashes[a] ^ hashes[b]).nonzeroBitCount
                    if distance <= threshold { expected.append(.init(a: a, b: b, distance: distance)) }
                }
            }
            XCTAssertEqual(NearDuplicateFinder(threshold: threshold).pairs(hashes), expected, "threshold \(threshold)")
            XCTAssertFalse(expected.isEmpty)
        }
    }

    /// A chain a–b–c–d (each step within the threshold, the ends not) must not become one group.
    func testGroupsDoNotChainThroughIntermediates() {
        let hashes: [UInt64] = [0b0, 0b1111, 0b1111_1111, 0b1111_1111_1111]
        let pairs = NearDuplicateFinder(threshold: 4).pairs(hashes)
        XCTAssertEqual(pairs.map { [$0.a, $0.b] }, [[0, 1], [1, 2], [2, 3]])
        let representatives = NearDuplicateFinder.groups(count: 4, pairs: pairs)
        for (member, representative) in representatives.enumerated() {
            XCTAssertLessThanOrEqual((hashes[member] ^ hashes[representative]).nonzeroBitCount, 4)
        }
        XCTAssertGreaterThan(Set(representatives).count, 1)
    }

    func testStarGroupsAroundItsCentre() {
        let pairs: [NearDuplicateFinder.Pair] = [.init(a: 0, b: 3, distance: 1), .init(a: 1, b: 3, distance: 1), .init(a: 2, b: 3, distance: 1)]
        XCTAssertEqual(NearDuplicateFinder.groups(count: 5, pairs: pairs), [3, 3, 3, 3, 4])
    }
}
