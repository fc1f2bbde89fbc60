// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A world that can be reset in place between deterministic schedules instead
/// of being built again: the runner keeps the world of each schedule length
/// (`RunOptions.lengths`) and, after a schedule that finished cleanly (no
/// violation, no deadlock, no livelock, no stop), calls `reset(seed:)` before
/// the next schedule of that length. A reset world must be indistinguishable
/// from a fresh one built with the same seed: every schedule the same
/// decisions, trace hash, violations and counters
/// (Tests/HarnessTests/WorldResetTests.swift checks every scenario and
/// variant whose world supports it).
public protocol ResettableWorld: ScenarioWorld {
    /// Returns the world to the state a fresh build with `seed` has (the same
    /// engine, selection and sizes); false if it cannot, and the runner then
    /// builds a fresh one.
    func reset(seed: UInt64) -> Bool
}

extension ResettableWorld {
    public var resettable: (any ResettableWorld)? { self }
}

/// The worlds a deterministic run keeps for reuse, one per schedule length.
final class WorldCache {
    var worlds: [(any ScenarioWorld)?]
    /// Whether the last schedule of each slot failed: the next world of that
    /// slot is built without recording (`WorldMemory.withoutRecording`), as
    /// it will most likely fail too and never be reset (a variant whose every
    /// schedule fails paid for a snapshot of every world: +1-2.4%
    /// instructions, up to +20% wall clock for steal-time-flush's patched).
    var lastFailed: [Bool]
    init(slots: Int) {
        worlds = Array(repeating: nil, count: slots)
        lastFailed = Array(repeating: false, count: slots)
    }

    /// The world of `slot`, reset for `seed`, if there is one and it can reset.
    func take(slot: Int, seed: UInt64) -> (any ScenarioWorld)? {
        guard let w = worlds[slot] else { return nil }
        worlds[slot] = nil
        guard let r = w.resettable, r.reset(seed: seed) else { return nil }
        return r
    }

    func clear() { for i in worlds.indices { worlds[i] = nil } }
}
