import Dataset
import Formats

/// The labelled images of a class-conditional run, shown in every real batch beside the loader's
/// own: with few labels among many images (1,000 of 60,000) a batch of 64 would carry about one,
/// and D's classifier would see each labelled image a handful of times in a whole run.
struct LabelledImages {
    /// L images, plain NCHW in [-1, 1], and their class indices.
    let images: [Float]
    let classes: [Int]
    let sampleLength: Int
    let perBatch: Int
    let seed: UInt64

    var count: Int { classes.count }

    /// Reads the rows of `rowClasses` that have a class (one pass over the dataset in order).
    init(dataset: String, rowClasses: [Int], perBatch: Int, seed: UInt64) throws {
        let loader = try BatchLoader(directory: dataset, batchSize: 512, seed: 0, dropLast: false, shuffle: false)
        var images: [Float] = [], classes: [Int] = []
        let batches = loader.epoch(0)
        while let batch = try batches.nextBatch() {
            for (slot, row) in batch.rows.enumerated() where rowClasses.indices.contains(row) && rowClasses[row] >= 0 {
                images += batch.images[slot * loader.sampleLength..<(slot + 1) * loader.sampleLength]
                classes.append(rowClasses[row])
            }
        }
        self.images = images
        self.classes = classes
        sampleLength = loader.sampleLength
        self.perBatch = perBatch
        self.seed = seed
    }

    /// Iteration `iteration`'s labelled images: consecutive slices of one seeded permutation per
    /// pass over them. It depends only on (seed, iteration), so a resumed run sees the same ones.
    func batch(iteration: Int) -> (images: [Float], classes: [Int]) {
        var images: [Float] = [], classes: [Int] = []
        images.reserveCapacity(perBatch * sampleLength)
        var position = iteration * perBatch, pass = -1, order: [Int] = []
        for _ in 0..<perBatch {
            if position / count != pass {
                pass = position / count
                var random = SeededRandom(seed: seed &+ 0x1ABE1 &+ UInt64(pass) &* 0x9E37_79B9_7F4A_7C15)
                order = random.permutation(count)
            }
            let index = order[position % count]
            images += self.images[index * sampleLength..<(index + 1) * sampleLength]
            classes.append(self.classes[index])
            position += 1
        }
        return (images, classes)
    }

    /// The default number per batch: a quarter of the batch while labels are scarce (under half the
    /// images) and the labelled images fit in 512 MB; else none (the loader's batches carry enough).
    static func defaultPerBatch(batch: Int, labelled: Int, total: Int, sampleLength: Int) -> Int {
        guard labelled * 2 < total, labelled * sampleLength * 4 <= 512 << 20 else { return 0 }
        return max(1, batch / 4)
    }
}
