import Dataset
import Foundation
import Formats
import NN

public enum EvaluationError: Error, CustomStringConvertible {
    case tooFewImages(path: String, count: Int, needed: Int)
    case mismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case .tooFewImages(let path, let count, let needed):
            return "\(path): \(count) images; evaluation needs at least \(needed)"
        case .mismatch(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// How an evaluation samples and measures. The defaults are the documented recipe: change them
/// and figures no longer compare with other runs'.
public struct EvaluationOptions: Sendable, Equatable {
    /// Real images drawn from the dataset, and synthetic images drawn from the generator.
    public var count = 2000
    public var seed: UInt64 = 0
    /// Kynkäänniemi et al.'s k for the k-NN manifolds.
    public var neighbours = 3
    /// Mode-coverage bins; nil: count / 100, between 10 and 50.
    public var bins: Int?
    /// Train the two-sample classifier (most of an evaluation's time).
    public var twoSample = true
    public var twoSampleRecipe = TwoSampleClassifier.Recipe()

    public init() {}

    public var binCount: Int { bins ?? min(50, max(10, count / 100)) }
}

/// What an evaluation measures about one set of synthetic images. JSON keys are a contract.
public struct EvaluationFigures: Codable, Sendable {
    public var twoSampleAccuracy: Double?
    public var twoSampleLoss: Double?
    public var fd: Double
    public var precision: Double
    public var recall: Double
    public var ndb: Int
    public var ndbBins: [CoverageBin]
    public var count: Int
    public var featureSpace: String

    public init(twoSampleAccuracy: Double?, twoSampleLoss: Double?, fd: Double, precision: Double, recall: Double, ndb: Int,
                ndbBins: [CoverageBin], count: Int, featureSpace: String) {
        self.twoSampleAccuracy = twoSampleAccuracy
        self.twoSampleLoss = twoSampleLoss
        self.fd = fd
        self.precision = precision
        self.recall = recall
        self.ndb = ndb
        self.ndbBins = ndbBins
        self.count = count
        self.featureSpace = featureSpace
    }

    enum CodingKeys: String, CodingKey {
        case twoSampleAccuracy = "two_sample_accuracy", twoSampleLoss = "two_sample_loss", fd, precision, recall, ndb
        case ndbBins = "ndb_bins", count, featureSpace = "feature_space"
    }
}

/// The real side of an evaluation, computed once per dataset and reused for every checkpoint:
/// a seeded subset of the dataset's images, their features, Gaussian, k-NN radii and bins.
public final class RealReference {
    public let dataset: String
    public let options: EvaluationOptions
    public let imageSize: Int
    public let channels: Int
    /// count × C × S × S, in [-1, 1].
    public let images: [Float]
    public let space: FeatureSpace
    public let features: [Float]
    public let gaussian: Gaussian
    public let radii: [Float]
    public let bins: ModeBins

    public var count: Int { radii.count }
    public var sampleLength: Int { channels * imageSize * imageSize }

    public convenience init(dataset: String, options: EvaluationOptions = .init()) throws {
        let real = try RealReference.images(dataset: dataset, options: options)
        self.init(images: real.images, imageSize: real.imageSize, channels: real.channels, dataset: dataset, options: options)
    }

    /// The real images an evaluation compares with: `options.count` of the dataset's (all if it
    /// has fewer), chosen by a shuffle seeded with `options.seed`.
    public static func images(dataset: String, options: EvaluationOptions) throws -> (images: [Float], imageSize: Int, channels: Int) {
        let loader = try BatchLoader(directory: dataset, batchSize: 512, seed: options.seed &+ 0xE7A1, dropLast: false)
        let needed = RealReference.minimumImages(options)
        guard loader.manifest.count >= needed else {
            throw EvaluationError.tooFewImages(path: dataset, count: loader.manifest.count, needed: needed)
        }
        let count = min(options.count, loader.manifest.count)
        var images: [Float] = []
        images.reserveCapacity(count * loader.sampleLength)
        let batches = loader.epoch(0)
        while images.count < count * loader.sampleLength, let batch = batches.next() {
            images += batch.images.prefix(count * loader.sampleLength - images.count)
        }
        batches.cancel()
        return (images, loader.manifest.size, loader.manifest.channels)
    }

    /// The fewest dataset images an evaluation with these options can work with.
    public static func minimumImages(_ options: EvaluationOptions) -> Int {
        max(2 * options.neighbours + 2, 2 * options.binCount, options.twoSample ? 2 * options.twoSampleRecipe.batch : 0)
    }

    /// From images in hand (tests, or a caller with its own real set).
    public init(images: [Float], imageSize: Int, channels: Int, dataset: String = "", options: EvaluationOptions = .init()) {
        self.dataset = dataset
        self.options = options
        self.imageSize = imageSize
        self.channels = channels
        self.images = images
        space = FeatureSpace(imageSize: imageSize, channels: channels)
        features = space.features(images)
        gaussian = Gaussian(features: features, dimension: space.dimension)
        radii = NearestNeighbours.kthNeighbourDistances(features, dimension: space.dimension, k: options.neighbours)
        let sample = channels * imageSize * imageSize
        bins = ModeBins(real: images, dimension: sample, bins: min(options.binCount, images.count / sample / 2), seed: options.seed &+ 0xB1A5)
    }
}

/// The figures for one set of synthetic images, and the two-sample test's verdict on each of its
/// held-out images (to show the most and least convincing fakes).
public struct SampleEvaluation {
    public var figures: EvaluationFigures
    public var twoSample: TwoSampleOutcome?

    /// synthetic: N × C × S × S in [-1, 1] (N = reference.count for comparable figures).
    public static func measure(_ synthetic: [Float], against reference: RealReference) -> SampleEvaluation {
        let space = reference.space, dimension = space.dimension
        let features = space.features(synthetic)
        let fd = Frechet.distance(reference.gaussian, Gaussian(features: features, dimension: dimension))
        let (precision, recall) = ManifoldMetrics.precisionRecall(real: reference.features, realRadii: reference.radii, synthetic: features,
                                                                  dimension: dimension, neighbours: reference.options.neighbours)
        let (ndb, bins) = reference.bins.compare(synthetic: synthetic)
        var twoSample: TwoSampleOutcome?
        if reference.options.twoSample {
            twoSample = TwoSampleOutcome.run(real: reference.images, synthetic: synthetic, imageSize: reference.imageSize,
                                             channels: reference.channels, recipe: reference.options.twoSampleRecipe)
        }
        let figures = EvaluationFigures(twoSampleAccuracy: twoSample?.accuracy, twoSampleLoss: twoSample?.loss, fd: fd,
                                        precision: precision, recall: recall, ndb: ndb, ndbBins: bins,
                                        count: synthetic.count / reference.sampleLength, featureSpace: FeatureSpace.version)
        return SampleEvaluation(figures: figures, twoSample: twoSample)
    }
}

/// Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
/// balls around its points reaching their k-th nearest neighbour. Precision: the share of
/// synthetic points inside the real manifold; recall: the share of real points inside the
/// synthetic manifold.
public enum ManifoldMetrics {
    public static func precisionRecall(real: [Float], realRadii: [Float]? = nil, synthetic: [Float], dimension: Int,
                                       neighbours k: Int = 3) -> (precision: Double, recall: Double) {
        let realRadii = realRadii ?? NearestNeighbours.kthNeighbourDistances(real, dimension: dimension, k: k)
        let syntheticRadii = NearestNeighbours.kthNeighbourDistances(synthetic, dimension: dimension, k: k)
        return (coverage(of: synthetic, by: real, radii: realRadii, dimension: dimension),
                coverage(of: real, by: synthetic, radii: syntheticRadii, dimension: dimension))
    }

    /// Share of `points` within radius of at least one of `centres`.
    static func coverage(of points: [Float], by centres: [Float], radii: [Float], dimension: Int, block: Int = 1024) -> Double {
        let count = points.count / dimension, centreCount = centres.count / dimension
        let squaredRadii = radii.map { $0 * $0 }
        var inside = 0
        for start in stride(from: 0, to: count, by: block) {
            let end = min(start + block, count)
            let distances = NearestNeighbours.squaredDistances(queries: Array(points[start * dimension..<end * dimension]),
                                                               references: centres, dimension: dimension)
            for i in 0..<(end - start) {
                for j in 0..<centreCount where distances[i * centreCount + j] <= squaredRadii[j] { inside += 1; break }
            }
        }
        return Double(inside) / Double(count)
    }
}
