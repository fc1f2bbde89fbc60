// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// What a run records, in both modes: stop requests, the oracles' violations,
/// the narration, coverage marks, and the schedule's hash.
///
/// Locking: violations and events are behind `Locked` mutexes (any actor may
/// report, on any thread); coverage counts are atomics; the hash is the
/// deterministic scheduler's (baton holder only).
extension SimEngine {
    // MARK: - stop

    /// Inlinable: wait predicates and guest loops test it at every step.
    @inlinable public var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }
    public func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    // MARK: - violations

    /// The first violations reported (at most `keptViolations`).
    public var violations: [Violation] { violationLock.withLock { $0.list } }
    /// Every violation reported, counted per oracle name.
    public var violationCounts: [String: Int] { violationLock.withLock { $0.counts } }
    public var violationTotal: Int { violationLock.withLock { $0.counts.values.reduce(0, +) } }

    /// Monotonic time (seconds) of the first violation reported since the engine was
    /// made or the schedule began.
    public internal(set) var firstViolationTime: Double? {
        get { firstViolationTimeLock.withLock { $0 } }
        set { firstViolationTimeLock.withLock { $0 = newValue } }
    }

    /// Reports a violation of `oracle`'s invariant.
    public func report(_ oracle: Oracle, _ message: String) {
        let v = Violation(oracle: oracle.name, message: message, step: currentStep, actor: currentActorName)
        let isFirst = violationLock.withLock { s in
            s.counts[oracle.name, default: 0] += 1
            if s.list.count < SimEngine.keptViolations { s.list.append(v) }
            return s.list.count == 1 && s.counts.count == 1 && s.counts[oracle.name] == 1
        }
        if isFirst { firstViolationTime = SimEngine.monotonicSeconds() }
        if recordEvents { event("VIOLATION [\(oracle.name)] \(message)") }
        if stopOnViolation { requestStop() }
    }

    /// CLOCK_MONOTONIC in seconds (wall time of runs; never used for decisions).
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    // MARK: - narration

    public var events: [SimEvent] { eventLock.withLock { $0 } }

    /// Name of the calling actor ("main" off the simulator's threads).
    public var currentActorName: String { SimExecutor.current?.name ?? "main" }

    /// Current step of the schedule (deterministic mode), else -1.
    public var currentStep: Int { mode == .deterministic ? decisionLog.count : -1 }

    /// Adds a line to the narration of the run (only when `recordEvents`).
    /// Inlinable: when nothing records, an event costs the caller one load and
    /// compare, and its text is never built.
    @inlinable @inline(__always)
    public func event(_ text: @autoclosure () -> String) {
        guard recordEvents else { return }
        appendEvent(withoutAccessPoints(text))
    }

    @usableFromInline
    func appendEvent(_ text: String) {
        let e = SimEvent(step: currentStep, actor: currentActorName, text: text)
        eventLock.withLock { $0.append(e) }
    }

    // MARK: - coverage

    /// Counts one visit of a protocol branch.
    @inline(__always)
    public func cover(_ mark: CoverageMark) {
        let row = coverageRows == 1 ? 0 : SimExecutor.currentID ?? coverageRows - 1
        coverage.add(row * CoverageMark.capacity + mark.index, 1)
    }

    /// Adds the coverage counts to `totals` (by mark index, grown to the marks
    /// declared) and zeroes them: the runner's per-schedule take, which hashes
    /// no names (building and merging a dictionary of names was 4% of a
    /// sync-mmu-race schedule).
    public func takeCoverage(into totals: inout [Int]) {
        let n = CoverageMark.registered.load(ordering: .acquiring)
        if totals.count < n { totals.append(contentsOf: repeatElement(0, count: n - totals.count)) }
        for row in 0..<coverageRows {
            let base = row * CoverageMark.capacity
            for i in 0..<n where coverage.load(base + i) != 0 { totals[i] += Int(coverage.exchange(base + i, 0)) }
        }
    }

    // MARK: - the schedule's hash

    /// Hash of every (actor, point) step of the schedule.
    public var scheduleHash: UInt64 { hasher.value }
}
