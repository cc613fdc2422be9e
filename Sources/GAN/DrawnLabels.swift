import Dataset
import Formats

/// `train --labeller`: every image the labels file leaves unlabelled takes, each time it is shown,
/// a class drawn from the labeller's probabilities for it. Over a run D's projection and classifier
/// see such an image with each class as often as the labeller believes it, so G's class k learns
/// p(x | k) ∝ p(x)·p_labeller(k | x): the doubtful images too, in proportion (a shirt the labeller
/// gives 40% is in the shirt row's target 40% of the time), where argmax pseudo-labels teach only the
/// images whose most probable class k is.
struct DrawnLabels {
    /// Row r's cumulative probabilities over the model's classes at [r·K, (r+1)·K) (zeros: a row
    /// with a given label, never drawn).
    let cumulative: [Float]
    let classCount: Int
    let seed: UInt64

    /// Row r's probabilities over `classCount` classes, nil for a row with a given label.
    init(probabilities: [[Float]?], classCount: Int, seed: UInt64) {
        var cumulative = [Float](repeating: 0, count: probabilities.count * classCount)
        for (row, p) in probabilities.enumerated() {
            guard let p else { continue }
            precondition(p.count == classCount, "a probability per class")
            var total: Float = 0
            for k in 0..<classCount {
                total += p[k]
                cumulative[row * classCount + k] = total
            }
        }
        self.cumulative = cumulative
        self.classCount = classCount
        self.seed = seed
    }

    /// Reads the dataset in order once and asks the labeller about the rows `rowClasses` leaves at −1.
    init(scorer: LabellerScorer, dataset: String, rowClasses: [Int], classCount: Int, seed: UInt64) throws {
        let loader = try BatchLoader(directory: dataset, batchSize: 512, seed: 0, dropLast: false, shuffle: false)
        var probabilities = [[Float]?](repeating: nil, count: rowClasses.count)
        let batches = loader.epoch(0)
        while let batch = try batches.nextBatch() {
            for (row, reading) in zip(batch.rows, scorer.readings(of: batch.images)) where rowClasses[row] < 0 {
                probabilities[row] = reading.probabilities
            }
        }
        self.init(probabilities: probabilities, classCount: classCount, seed: seed)
    }

    /// `classes` (a batch's, −1 where unlabelled) with every −1 of a row in `rows` drawn. The draws
    /// depend only on (seed, iteration), so a resumed run draws the same ones.
    func drawing(_ classes: [Int], rows: [Int], iteration: Int) -> [Int] {
        var random = SeededRandom(seed: seed &+ 0xD4A3 &+ UInt64(iteration) &* 0x9E37_79B9_7F4A_7C15)
        var drawn = classes
        for (slot, row) in rows.enumerated() where drawn[slot] < 0 && (row + 1) * classCount <= cumulative.count {
            let u = random.nextUniform()
            let base = row * classCount
            drawn[slot] = (0..<classCount).first { u < cumulative[base + $0] } ?? classCount - 1
        }
        return drawn
    }
}
