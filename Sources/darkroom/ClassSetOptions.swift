import ArgumentParser
import GAN

/// `generate --per-class` and `utility`: the labellers given, else the one the run trained with,
/// and the set's choices, the measured best where there is a labeller and the command line leaves
/// them unset (`ClassSetChoice`).
func resolveClassSet(labellers given: [String], run: String, filter: Double?, byLabeller: Bool?, keep: String?,
                     classMix: Double?, psi: Float?) throws -> (labellers: [String], choice: ClassSetChoice) {
    var labellers = given
    if labellers.isEmpty, let own = TrainedGenerator.labeller(run: run) {
        labellers = [own]
        Console.note("with the labeller the run trained with, \(own)")
    }
    let choice = ClassSetChoice.resolve(filter: filter, byLabeller: byLabeller, keep: keep.flatMap(ClassFilterKeep.init),
                                        classMix: classMix, psi: psi, hasLabeller: !labellers.isEmpty)
    let labellerNeeded = "needs a labeller: --labeller, or a run trained with one"
    if choice.byLabeller && (choice.filter ?? 0) > 0 && labellers.isEmpty { throw ValidationError("--filter-by labeller \(labellerNeeded)") }
    if choice.classMix > 0 && labellers.isEmpty { throw ValidationError("--class-mix \(labellerNeeded)") }
    return (labellers, choice)
}

/// `--filter-floor`: the floor `--filter-keep hardest` keeps above (default 0.5), refused where
/// no candidates are kept hardest.
func resolveFilterFloor(_ floor: Double?, choice: ClassSetChoice) throws -> Double {
    if floor != nil && (choice.keep != .hardest || (choice.filter ?? 0) == 0) { throw ValidationError("--filter-floor comes with --filter-keep hardest") }
    return floor ?? ClassFilterKeep.defaultFloor
}
