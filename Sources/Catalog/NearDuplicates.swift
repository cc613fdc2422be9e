import Foundation
import Imaging

/// Finds every pair of perceptual hashes within `threshold` bits without comparing all pairs:
/// multi-index hashing. Split the 64 bits into threshold+1 blocks; by the pigeonhole principle two
/// hashes that differ in at most `threshold` bits agree exactly on at least one block, so only
/// hashes sharing a block value are compared.
public struct NearDuplicateFinder {
    public let threshold: Int

    public init(threshold: Int) {
        precondition(threshold >= 0 && threshold < 64, "threshold must be in 0..<64")
        self.threshold = threshold
    }

    public struct Pair: Equatable, Hashable, Sendable {
        public var a: Int
        public var b: Int
        public var distance: Int

        public init(a: Int, b: Int, distance: Int) {
            self.a = a
            self.b = b
            self.distance = distance
        }
    }

    /// Pairs of indices into `hashes`, a < b, each once, sorted. Blocks are searched in parallel.
    public func pairs(_ hashes: [UInt64]) -> [Pair] {
        precondition(hashes.count < 1 << 32, "at most 2³² hashes")
        let blocks = threshold + 1
        var ranges: [(shift: UInt64, mask: UInt64)] = []
        var start = 0
        for block in 0..<blocks {
            let width = 64 / blocks + (block < 64 % blocks ? 1 : 0)
            ranges.append((UInt64(start), width == 64 ? ~0 : (1 << UInt64(width)) - 1))
            start += width
        }
        var perBlock = [[UInt64]](repeating: [], count: blocks)
        perBlock.withUnsafeMutableBufferPointer { perBlock in
            nonisolated(unsafe) let perBlock = perBlock
            DispatchQueue.concurrentPerform(iterations: blocks) { block in
                perBlock[block] = pairs(hashes, agreeingFirstOn: block, of: ranges)
            }
        }
        var found = perBlock.flatMap { $0 }
        found.sort()
        return found.map { packed in
            let a = Int(packed >> 32), b = Int(packed & 0xFFFF_FFFF)
            return Pair(a: a, b: b, distance: (hashes[a] ^ hashes[b]).nonzeroBitCount)
        }
    }

    /// The pairs (packed a << 32 | b) within the threshold whose first equal block is `block`, so
    /// that over all blocks each pair comes once. Sort the (block value, index) keys and compare
    /// within runs of equal values: flat keys, no dictionary of arrays (an allocation per bucket).
    private func pairs(_ hashes: [UInt64], agreeingFirstOn block: Int, of ranges: [(shift: UInt64, mask: UInt64)]) -> [UInt64] {
        let (shift, mask) = ranges[block]
        var keyed = [UInt64](), wide = [(key: UInt64, index: Int)]()
        // Keys of up to 32 bits pack with the index into one integer, which sorts fastest.
        let packs = mask >> 32 == 0
        if packs {
            keyed = hashes.enumerated().map { (($0.element >> shift) & mask) << 32 | UInt64($0.offset) }
            keyed.sort()
        } else {
            wide = hashes.enumerated().map { (($0.element >> shift) & mask, $0.offset) }
            wide.sort { $0.key < $1.key || ($0.key == $1.key && $0.index < $1.index) }
        }
        let count = hashes.count
        func key(_ i: Int) -> UInt64 { packs ? keyed[i] >> 32 : wide[i].key }
        func index(_ i: Int) -> Int { packs ? Int(keyed[i] & 0xFFFF_FFFF) : wide[i].index }
        var found: [UInt64] = []
        var runStart = 0
        while runStart < count {
            var runEnd = runStart + 1
            while runEnd < count && key(runEnd) == key(runStart) { runEnd += 1 }
            for i in runStart..<runEnd {
                for j in (i + 1)..<runEnd {
                    let a = index(i), b = index(j), difference = hashes[a] ^ hashes[b]
                    guard difference.nonzeroBitCount <= threshold,
                          !ranges[..<block].contains(where: { (difference >> $0.shift) & $0.mask == 0 }) else { continue }
                    found.append(UInt64(a) << 32 | UInt64(b))
                }
            }
            runStart = runEnd
        }
        return found
    }

    /// Groups around representatives without chaining: visit items by number of neighbours (most
    /// first, ties by lowest index); an ungrouped item with ungrouped neighbours becomes a
    /// representative and takes them all into its group. Every member is within the threshold of
    /// its representative, never merely of another member. Returns each item's representative
    /// (itself when it is in no group).
    public static func groups(count: Int, pairs: [Pair]) -> [Int] {
        var neighbours = [[Int]](repeating: [], count: count)
        for pair in pairs {
            neighbours[pair.a].append(pair.b)
            neighbours[pair.b].append(pair.a)
        }
        var representative = Array(0..<count)
        var grouped = [Bool](repeating: false, count: count)
        let order = (0..<count).filter { !neighbours[$0].isEmpty }.sorted {
            (neighbours[$0].count, -$0) > (neighbours[$1].count, -$1)
        }
        for item in order where !grouped[item] {
            let free = neighbours[item].filter { !grouped[$0] }
            guard !free.isEmpty else { continue }
            grouped[item] = true
            for member in free {
                grouped[member] = true
                representative[member] = item
            }
        }
        return representative
    }
}
