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

    /// Pairs of indices into `hashes`, a < b, each once, sorted.
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
        // A pair is reported by the first block its hashes agree on, so each pair comes once.
        var found: [UInt64] = []  // a << 32 | b
        var keyed = [(key: UInt64, index: Int)](repeating: (0, 0), count: hashes.count)
        for (block, (shift, mask)) in ranges.enumerated() {
            // Sort (block value, index) and compare within runs of equal values. Sorting flat keys
            // avoids a dictionary of arrays (an allocation per bucket).
            for (index, hash) in hashes.enumerated() { keyed[index] = ((hash >> shift) & mask, index) }
            keyed.sort { $0.key < $1.key || ($0.key == $1.key && $0.index < $1.index) }
            var runStart = 0
            while runStart < keyed.count {
                var runEnd = runStart + 1
                while runEnd < keyed.count && keyed[runEnd].key == keyed[runStart].key { runEnd += 1 }
                for i in runStart..<runEnd {
                    for j in (i + 1)..<runEnd {
                        let a = keyed[i].index, b = keyed[j].index, difference = hashes[a] ^ hashes[b]
                        guard difference.nonzeroBitCount <= threshold,
                              !ranges[..<block].contains(where: { (difference >> $0.shift) & $0.mask == 0 }) else { continue }
                        found.append(UInt64(a) << 32 | UInt64(b))
                    }
                }
                runStart = runEnd
            }
        }
        found.sort()
        return found.map { packed in
            let a = Int(packed >> 32), b = Int(packed & 0xFFFF_FFFF)
            return Pair(a: a, b: b, distance: (hashes[a] ^ hashes[b]).nonzeroBitCount)
        }
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
