import Foundation
import Formats
import NN

/// Where training stands: saved with the weights, so a resumed run continues exactly.
public struct TrainingProgress: Codable, Equatable, Sendable {
    /// The epoch being trained (0-based) and the batches of it already done.
    public var epoch: Int
    public var batchInEpoch: Int
    /// Iterations done since the start of training.
    public var iteration: Int

    public init(epoch: Int, batchInEpoch: Int, iteration: Int) {
        self.epoch = epoch
        self.batchInEpoch = batchInEpoch
        self.iteration = iteration
    }
}

public enum CheckpointError: Error, CustomStringConvertible {
    case incompatible(path: String, reason: String)

    public var description: String {
        switch self {
        case .incompatible(let path, let reason): return "\(path): cannot resume from this checkpoint: \(reason)"
        }
    }
}

/// Checkpoints in safetensors, PyTorch's layouts (conv weight [out, in, kh, kw], ConvTranspose2d
/// weight [in, out, kh, kw]). The generator's tensors carry the names of PyTorch's DCGAN example
/// (`main.0.weight`, `main.1.running_mean`, …) so it loads into that model; the discriminator's
/// are under `discriminator.`, Adam's moments under `adam.generator.` / `adam.discriminator.`
/// (`….exp_avg`, `….exp_avg_sq`), the EMA generator under `ema.`; the rest is in `__metadata__`.
public enum Checkpoint {
    public static func tensors(of network: Sequential, prefix: String) -> [String: Safetensors.Entry] {
        var tensors: [String: Safetensors.Entry] = [:]
        for layer in network.layers {
            for parameter in layer.parameters {
                tensors[prefix + parameter.name] = .init(floats: parameter.value.values, shape: parameter.value.shape)
            }
            if let norm = layer as? BatchNorm2d {
                tensors[prefix + norm.name + ".running_mean"] = .init(floats: norm.runningMean.values, shape: [norm.channels])
                tensors[prefix + norm.name + ".running_var"] = .init(floats: norm.runningVariance.values, shape: [norm.channels])
                tensors[prefix + norm.name + ".num_batches_tracked"] = .init(int64: norm.batchesTracked)
            }
        }
        return tensors
    }

    public static func load(_ tensors: [String: Safetensors.Entry], into network: Sequential, prefix: String, path: String) throws {
        func floats(_ name: String, _ target: Tensor) throws {
            guard let entry = tensors[prefix + name] else { throw CheckpointError.incompatible(path: path, reason: "missing tensor \(prefix + name)") }
            guard entry.dtype == .float32, entry.shape == target.shape else {
                throw CheckpointError.incompatible(path: path, reason: "\(prefix + name) has shape \(entry.shape), the model wants \(target.shape)")
            }
            let values = entry.floats
            for i in 0..<values.count { target[i] = values[i] }
        }
        for layer in network.layers {
            for parameter in layer.parameters { try floats(parameter.name, parameter.value) }
            if let norm = layer as? BatchNorm2d {
                try floats(norm.name + ".running_mean", norm.runningMean)
                try floats(norm.name + ".running_var", norm.runningVariance)
                norm.batchesTracked = tensors[prefix + norm.name + ".num_batches_tracked"]?.int64 ?? 0
            }
        }
    }

    static func tensors(of optimizer: Adam, prefix: String) -> [String: Safetensors.Entry] {
        var tensors: [String: Safetensors.Entry] = [:]
        for (index, parameter) in optimizer.parameters.enumerated() {
            tensors[prefix + parameter.name + ".exp_avg"] = .init(floats: optimizer.firstMoments[index].values, shape: parameter.value.shape)
            tensors[prefix + parameter.name + ".exp_avg_sq"] = .init(floats: optimizer.secondMoments[index].values, shape: parameter.value.shape)
        }
        return tensors
    }

    static func load(_ tensors: [String: Safetensors.Entry], into optimizer: Adam, prefix: String, path: String) throws {
        for (index, parameter) in optimizer.parameters.enumerated() {
            for (suffix, target) in [(".exp_avg", optimizer.firstMoments[index]), (".exp_avg_sq", optimizer.secondMoments[index])] {
                guard let entry = tensors[prefix + parameter.name + suffix], entry.shape == target.shape else {
                    throw CheckpointError.incompatible(path: path, reason: "missing or misshapen \(prefix + parameter.name + suffix)")
                }
                let values = entry.floats
                for i in 0..<values.count { target[i] = values[i] }
            }
        }
    }

    /// Everything of a trainer, and where it stands.
    public static func save(_ trainer: DCGANTrainer, progress: TrainingProgress, ema: Generator?, extra: [String: String], to path: String) throws {
        var all = tensors(of: trainer.generator.network, prefix: "")
        all.merge(Self.tensors(of: trainer.discriminator.network, prefix: "discriminator."), uniquingKeysWith: { a, _ in a })
        if let classifier = trainer.discriminator.classifier {
            all.merge(Self.tensors(of: classifier, prefix: "discriminator."), uniquingKeysWith: { a, _ in a })
        }
        if let projection = trainer.discriminator.projection {
            all["discriminator." + projection.name] = .init(floats: projection.value.values, shape: projection.value.shape)
        }
        all.merge(Self.tensors(of: trainer.generatorOptimizer, prefix: "adam.generator."), uniquingKeysWith: { a, _ in a })
        all.merge(Self.tensors(of: trainer.discriminatorOptimizer, prefix: "adam.discriminator."), uniquingKeysWith: { a, _ in a })
        if let ema { all.merge(Self.tensors(of: ema.network, prefix: "ema."), uniquingKeysWith: { a, _ in a }) }
        if let replay = trainer.replayBuffer, replay.count > 0 {
            let c = trainer.configuration
            all["replay.images"] = .init(floats: replay.images, shape: [replay.count, c.channels, c.imageSize, c.imageSize])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = extra
        metadata["format"] = "darkroom-dcgan-1"
        if trainer.pseudoLabelsActive { metadata["pseudo_labels_active"] = "1" }
        metadata["configuration"] = String(decoding: try encoder.encode(trainer.configuration), as: UTF8.self)
        metadata["step_options"] = String(decoding: try encoder.encode(trainer.options), as: UTF8.self)
        metadata["progress"] = String(decoding: try encoder.encode(progress), as: UTF8.self)
        metadata["epoch"] = String(progress.epoch)
        metadata["iteration"] = String(progress.iteration)
        metadata["noise_state"] = String(trainer.noise.state)
        metadata["augmentation_state"] = String(trainer.augmentationRandom.state)
        metadata["instance_noise_state"] = String(trainer.instanceNoiseRandom.state)
        metadata["penalty_state"] = String(trainer.penaltyRandom.state)
        if let replay = trainer.replayBuffer { metadata["replay_state"] = String(replay.random.state) }
        metadata["last_generator_step"] = "\(trainer.lastGeneratorStep.loss),\(trainer.lastGeneratorStep.dFake)"
        metadata["adam_steps"] = "\(trainer.generatorOptimizer.stepCount),\(trainer.discriminatorOptimizer.stepCount)"
        if let adaptive = trainer.adaptive { metadata["ada_state"] = String(decoding: try encoder.encode(adaptive), as: UTF8.self) }
        metadata["dropout_states"] = trainer.discriminator.layers.compactMap { ($0 as? Dropout)?.random.state }.map(String.init).joined(separator: ",")
        try Safetensors.write(all, metadata: metadata, to: path)
    }

    /// The configuration a checkpoint was trained with (to build the model before loading it).
    public static func configuration(at path: String) throws -> (DCGANConfiguration, StepOptions, [String: Safetensors.Entry], [String: String]) {
        let (tensors, metadata) = try Safetensors.read(path: path)
        guard metadata["format"] == "darkroom-dcgan-1", let configuration = metadata["configuration"], let options = metadata["step_options"] else {
            throw CheckpointError.incompatible(path: path, reason: "not a Darkroom DCGAN checkpoint")
        }
        return (try JSONDecoder().decode(DCGANConfiguration.self, from: Data(configuration.utf8)),
                try JSONDecoder().decode(StepOptions.self, from: Data(options.utf8)), tensors, metadata)
    }

    /// Restores a trainer (built with the same configuration) and returns where it stood.
    public static func restore(_ trainer: DCGANTrainer, ema: Generator?, from path: String) throws -> TrainingProgress {
        let (configuration, _, tensors, metadata) = try Checkpoint.configuration(at: path)
        guard configuration == trainer.configuration else {
            throw CheckpointError.incompatible(path: path, reason: "it was trained with \(configuration), this run asks for \(trainer.configuration)")
        }
        try load(tensors, into: trainer.generator.network, prefix: "", path: path)
        try load(tensors, into: trainer.discriminator.network, prefix: "discriminator.", path: path)
        if let classifier = trainer.discriminator.classifier { try load(tensors, into: classifier, prefix: "discriminator.", path: path) }
        if let projection = trainer.discriminator.projection {
            let name = "discriminator." + projection.name
            guard let entry = tensors[name], entry.dtype == .float32, entry.shape == projection.value.shape else {
                throw CheckpointError.incompatible(path: path, reason: "missing or misshapen \(name)")
            }
            let values = entry.floats
            for i in 0..<values.count { projection.value[i] = values[i] }
        }
        try load(tensors, into: trainer.generatorOptimizer, prefix: "adam.generator.", path: path)
        try load(tensors, into: trainer.discriminatorOptimizer, prefix: "adam.discriminator.", path: path)
        if let ema { try load(tensors, into: ema.network, prefix: tensors.keys.contains { $0.hasPrefix("ema.") } ? "ema." : "", path: path) }
        let steps = (metadata["adam_steps"] ?? "0,0").split(separator: ",").compactMap { Int($0) }
        guard steps.count == 2, let noise = metadata["noise_state"].flatMap(UInt64.init),
              let progressText = metadata["progress"] else {
            throw CheckpointError.incompatible(path: path, reason: "metadata lacks the training state")
        }
        trainer.generatorOptimizer.stepCount = steps[0]
        trainer.discriminatorOptimizer.stepCount = steps[1]
        trainer.noise = SeededRandom(seed: noise)
        if let augmentation = metadata["augmentation_state"].flatMap(UInt64.init) { trainer.augmentationRandom = SeededRandom(seed: augmentation) }
        if let state = metadata["instance_noise_state"].flatMap(UInt64.init) { trainer.instanceNoiseRandom = SeededRandom(seed: state) }
        if let state = metadata["penalty_state"].flatMap(UInt64.init) { trainer.penaltyRandom = SeededRandom(seed: state) }
        if let replay = trainer.replayBuffer, let state = metadata["replay_state"].flatMap(UInt64.init) {
            let images = tensors["replay.images"]?.floats ?? []
            guard images.count % replay.imageSize == 0, images.count / replay.imageSize <= replay.capacity else {
                throw CheckpointError.incompatible(path: path, reason: "replay.images does not fit a replay buffer of \(replay.capacity) images")
            }
            trainer.replayBuffer = ReplayBuffer(capacity: replay.capacity, imageSize: replay.imageSize, images: images, random: SeededRandom(seed: state))
        }
        let lastGenerator = (metadata["last_generator_step"] ?? "").split(separator: ",").compactMap { Float($0) }
        if lastGenerator.count == 2 { trainer.lastGeneratorStep = (lastGenerator[0], lastGenerator[1]) }
        if trainer.adaptive != nil, let state = metadata["ada_state"] {
            trainer.adaptive = try JSONDecoder().decode(AdaptiveAugmentation.self, from: Data(state.utf8))
        }
        trainer.pseudoLabelsActive = metadata["pseudo_labels_active"] == "1"
        let dropoutStates = (metadata["dropout_states"] ?? "").split(separator: ",").compactMap { UInt64($0) }
        for (dropout, state) in zip(trainer.discriminator.layers.compactMap { $0 as? Dropout }, dropoutStates) { dropout.random = SeededRandom(seed: state) }
        return try JSONDecoder().decode(TrainingProgress.self, from: Data(progressText.utf8))
    }
}
