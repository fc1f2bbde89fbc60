// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// An actor that runs synchronous workload code on its own executor (a host
/// CPU, a vcpu thread).
public protocol WorkloadActor: SimActor {
    func run(_ work: @Sendable () -> Void)
}

extension SimEngine {
    /// Starts a workload loop on `actor`: `step` runs with the actor's own PRNG
    /// stream (derived from `seed` and `salt`, so what an actor does never depends
    /// on who ran first) `quota` times, or until the run is asked to stop when
    /// `endless` (parallel mode). `step` gets the iteration number; `done` runs
    /// after the loop on the actor.
    public func spawnLoop<A: WorkloadActor>(on actor: A, seed: UInt64, salt: UInt64, endless: Bool, quota: Int,
                                            _ step: @escaping @Sendable (inout SplitMix64, Int) -> Void,
                                            done: @escaping @Sendable () -> Void = {}) {
        let actorSeed = SplitMix64.derive(seed, salt)
        spawn(on: actor.executor) { [self] in
            await actor.run { [self] in
                var rng = SplitMix64(seed: actorSeed)
                var n = 0
                while !stopRequested && (endless || n < quota) {
                    step(&rng, n)
                    n += 1
                }
                done()
            }
        }
    }

    /// Starts `body` on `actor` (its own loop, with its own PRNG stream).
    public func spawnWork<A: WorkloadActor>(on actor: A, seed: UInt64, salt: UInt64,
                                            _ body: @escaping @Sendable (inout SplitMix64) -> Void) {
        let actorSeed = SplitMix64.derive(seed, salt)
        spawn(on: actor.executor) {
            await actor.run {
                var rng = SplitMix64(seed: actorSeed)
                body(&rng)
            }
        }
    }
}
