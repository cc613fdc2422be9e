import Formats
import NN

/// Historical replay (Shrivastava et al. 2017; the "historically generated batches" of the GAN
/// tutorials): part of each fake batch D sees is drawn from images G made earlier, so D keeps
/// rejecting what G used to produce and G cannot cycle back to it.
public struct ReplayBuffer: Sendable {
    public let capacity: Int
    /// Floats per image (C·S·S).
    public let imageSize: Int
    /// `count` images, row-major, plain.
    public private(set) var images: [Float] = []
    public var count: Int { images.count / imageSize }
    public var random: SeededRandom

    public init(capacity: Int, imageSize: Int, seed: UInt64) {
        precondition(capacity > 0 && imageSize > 0, "a replay buffer needs room")
        self.capacity = capacity
        self.imageSize = imageSize
        random = SeededRandom(seed: seed)
    }

    /// A restored buffer (checkpoints).
    public init(capacity: Int, imageSize: Int, images: [Float], random: SeededRandom) {
        precondition(images.count % imageSize == 0 && images.count / imageSize <= capacity, "replay images do not fit the buffer")
        self.capacity = capacity
        self.imageSize = imageSize
        self.images = images
        self.random = random
    }

    /// `mixed` ← `fresh` (plain [N, …]) with its first round(fraction·N) images (at most the stored
    /// count) replaced by stored images drawn at random; returns how many were replaced.
    @discardableResult
    public mutating func mix(_ fresh: Tensor, fraction: Float, into mixed: Tensor) -> Int {
        precondition(fresh.format == nil && fresh.count / fresh.shape[0] == imageSize, "replay takes plain images of its size")
        mixed.copy(from: fresh)
        let replaced = min(Int((fraction * Float(fresh.shape[0])).rounded()), count)
        for slot in 0..<replaced {
            let source = Int(random.next() % UInt64(count))
            images.withUnsafeBufferPointer { (mixed.data + slot * imageSize).update(from: $0.baseAddress! + source * imageSize, count: imageSize) }
        }
        mixed.markModified()
        return replaced
    }

    /// Keeps every image of `fresh`: appended while there is room, then over a random stored one.
    public mutating func store(_ fresh: Tensor) {
        precondition(fresh.format == nil && fresh.count / fresh.shape[0] == imageSize, "replay takes plain images of its size")
        for n in 0..<fresh.shape[0] {
            let image = UnsafeBufferPointer(start: fresh.data + n * imageSize, count: imageSize)
            if count < capacity {
                images.append(contentsOf: image)
            } else {
                let slot = Int(random.next() % UInt64(capacity))
                images.replaceSubrange(slot * imageSize..<(slot + 1) * imageSize, with: image)
            }
        }
    }
}
