// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// What to run.
public struct RunOptions: Sendable {
    /// The scenario, variant and configuration.
    public var selection: ScenarioSelection
    public var mode: ExecutionMode = .deterministic
    public var seed: UInt64 = 1
    /// Deterministic: schedules to run. Parallel: work units (guest ops + host events).
    public var schedules: Int?
    public var seconds: Double?
    public var strategy: StrategyKind = .random
    public var depth: Int = 3
    /// Run every schedule even after a violation.
    public var keepGoing = false
    /// Run each deterministic schedule twice and compare the traces.
    public var checkDeterminism = false
    /// Deterministic mode: reuse the world of a finished schedule, reset in
    /// place (`ResettableWorld`), instead of building a new one. Off (or
    /// `KVMSIM_WORLD_RESET=0` in the environment): a fresh world per schedule,
    /// the same schedules (tests compare the two).
    public var resetWorlds = RunOptions.resetWorldsByDefault
    public static let resetWorldsByDefault = ProcessInfo.processInfo.environment["KVMSIM_WORLD_RESET"] != "0"
    /// How deterministic mode passes the baton (same schedules either way).
    public var backend: SimEngine.DeterministicBackend = .preferred
    /// Deterministic mode: schedule lengths, as multiples of the scenario's
    /// per-actor quotas (`opsPerVCPU`, `hostEventsPerSource`); schedule `i`
    /// uses `lengths[i % lengths.count]`. Longer worlds give a race more
    /// chances per schedule (docs/performance.md, "search").
    public var lengths: [Int] = RunOptions.searchLengths
    /// Deterministic mode: switch actors at named points only, or also at every
    /// access to kernel memory. Parallel mode with `recordTrace`: the points the
    /// recording notes, and the reproduction then switches at (the CLI records
    /// at `.accesses` unless told otherwise: recordings at named points leave
    /// interleavings inside a step that the replay cannot make).
    public var points: PointGranularity = .named

    /// The default search's lengths: over 10 seeds of the SYNC_MMU change_pte
    /// race, worlds of 1, 2, 4 and 8 times the scenario's quotas in turn found
    /// it 5-100x sooner than the scenario's own length with random or PCT
    /// scheduling (docs/performance.md, "search"); short schedules still come
    /// first, so a shallow race's trace stays short.
    public static let searchLengths = [1, 2, 4, 8]
    /// Parallel recording's lengths (the CLI's default with `--mode parallel
    /// --trace-out`): on real threads a short world spends most of its time
    /// starting and joining its actors, so episodes of 8, 16 and 32 times the
    /// quotas find the SYNC_MMU change_pte race in 1-11 s where episodes of
    /// 1-8 times missed it in 30 s for 2 of 5 seeds (docs/performance.md,
    /// "search"). The price is a long trace: the shrinker cuts decisions, not
    /// the episode's operations (docs/architecture.md, "what is left").
    public static let recordingLengths = [8, 16, 32]
    /// Parallel mode: run real-thread work as episodes (worlds of the
    /// deterministic schedules' size, on the same threads), record the order in
    /// which actors pass their points, and turn a failing episode into a
    /// deterministic trace (`Runner+Reproduction.swift`). Off: one endless world.
    public var recordTrace = false
    /// Parallel mode with `recordTrace`: at most this long searching for a
    /// deterministic schedule that reproduces a real-thread failure.
    public var reproductionSeconds: Double = 60
    /// Parallel mode with `recordTrace`: at most this long shrinking the
    /// reproduced trace (the shrinker's result then depends on how far it got;
    /// `kvmsim shrink` can take it further).
    public var reproductionShrinkSeconds: Double = 30
    /// Stops the run between schedules (deterministic) or at the next poll (parallel).
    public var stop: StopSignal = .never

    public init(_ selection: ScenarioSelection, mode: ExecutionMode = .deterministic) {
        self.selection = selection
        self.mode = mode
    }

    /// Options for `scenario` / `variant` (names, parsed here) in the scenario's
    /// default configuration for `mode`.
    public init(scenario: String, variant: String, mode: ExecutionMode) throws(InputError) {
        self.init(try ScenarioRegistry.named(scenario).selection(variant: variant, mode: mode), mode: mode)
    }

    public var scenario: String { selection.scenarioName }
    public var variant: String { selection.variant }
}
