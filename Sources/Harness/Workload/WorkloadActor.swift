// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// An actor that runs synchronous workload code on its own executor (a host
/// CPU, a vcpu thread). `run` calls `work` and does nothing else: parallel
/// mode's task calls it on the actor, and deterministic mode's body job
/// calls `work` directly on the actor's executor (`SimEngine.start`).
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
        let work: @Sendable () -> Void = { [self] in
            var rng = SplitMix64(seed: actorSeed)
            var n = 0
            while !stopRequested && (endless || n < quota) {
                step(&rng, n)
                n += 1
            }
            done()
        }
        start(work, on: actor)
    }

    /// Runs `work` on `actor`'s executor. Deterministic mode: one body job
    /// on that executor, no task; the job is the workload's first step. The
    /// job calls `work` itself, where parallel mode's task hops onto the
    /// actor and calls `actor.run(work)`: `work` is a nonisolated `@Sendable`
    /// closure that needs no isolation, and every `run` only calls it; what
    /// the model needs is the executor (`SimExecutor.current`, the actor's
    /// points), which the job has. (Through `actor.assumeIsolated` the job
    /// cost two allocations, a closure and the runtime's executor check:
    /// about 1,900 instructions a workload, 5,700 a sync-mmu-race schedule.)
    ///
    /// (Before trace version 2, deterministic mode ran three jobs a workload,
    /// the steps a task took: its start, its hop onto the actor and its
    /// return. Neither of the last two ran model code.)
    func start<A: WorkloadActor>(_ work: @escaping @Sendable () -> Void, on actor: A) {
        guard mode == .deterministic else {
            // A closure literal: with `actor.run(work)` the runtime entered
            // the actor without the hop (debug build).
            spawn(on: actor.executor) { await actor.run { work() } }
            return
        }
        spawnBody(on: actor.executor, work)
    }

    /// Starts `body` on `actor` (its own loop, with its own PRNG stream).
    public func spawnWork<A: WorkloadActor>(on actor: A, seed: UInt64, salt: UInt64,
                                            _ body: @escaping @Sendable (inout SplitMix64) -> Void) {
        let actorSeed = SplitMix64.derive(seed, salt)
        start({
            var rng = SplitMix64(seed: actorSeed)
            body(&rng)
        }, on: actor)
    }
}
