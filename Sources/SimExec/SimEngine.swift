// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CURCU

/// How a run executes the (single) model code.
public enum ExecutionMode: String, Sendable, CaseIterable, Codable {
    /// One thread runs at a time; a seeded strategy picks every step.
    case deterministic
    /// Every actor's thread runs for real, concurrently.
    case parallel
}

/// A violation of an invariant of the modelled system, reported by an oracle.
public struct Violation: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The oracle's short name, e.g. "I1", "lost-write", "rcu-use-after-free".
    public var oracle: String
    public var message: String
    /// Step of the schedule at which it was seen (deterministic mode), else -1.
    public var step: Int
    /// The actor that saw it.
    public var actor: String

    public init(oracle: String, message: String, step: Int, actor: String) {
        self.oracle = oracle; self.message = message; self.step = step; self.actor = actor
    }

    public var description: String { "[\(oracle)] step \(step) \(actor): \(message)" }
}

/// One line of the readable account of a schedule: who did what, in order.
public struct SimEvent: Sendable, Codable, Equatable {
    public var step: Int
    public var actor: String
    public var text: String
}

/// The execution engine: owns one `SimExecutor` (and thread) per actor and, in
/// deterministic mode, the baton that only one of those threads holds at a time.
///
/// Model code sees the engine through three calls:
/// - `point(_:)`: a named scheduling point, where the kernel could be preempted,
///   sleep, or be overtaken by another CPU. Synchronous: it can stand anywhere,
///   including inside an RCU read section or a spinlock-held region.
/// - `waitUntil(_:_:)`: block (spin, sleep) until a condition holds, e.g. a
///   spinlock is free or a grace period has ended. Deterministic mode never runs
///   a waiter whose condition is false.
/// - `report(_:)` / `event(_:)`: oracles' violations and the narration of a run.
///
/// Deterministic mode: every decision is made by the strategy from the schedule's
/// seed; nothing else (clocks, hashing, thread timing) affects which thread runs.
/// Locking: `mutex` guards the baton, executor states and queues, the step log.
public final class SimEngine: @unchecked Sendable {
    public let mode: ExecutionMode
    public private(set) var executors: [SimExecutor] = []

    private var mutex = pthread_mutex_t()
    private var mainCond = pthread_cond_t()

    // ---- deterministic state (mutex) ----
    private var baton = -1
    private var scheduleDone = false
    private var strategy: SchedulingStrategy = RandomStrategy()
    /// Executor chosen at each step of the current schedule.
    public private(set) var decisions: [UInt16] = []
    /// Point at which each step's chosen actor resumed (only with `recordSteps`).
    public private(set) var stepLog: [(actor: Int, point: StaticString)] = []
    public var recordSteps = false
    private var hasher = FNV1a64()
    /// Steps after which a schedule counts as a hang (livelock oracle).
    public var maxSteps = 200_000
    public private(set) var deadlocked = false
    public private(set) var hung = false
    /// True once a deadlock left threads stuck; the engine cannot run again.
    public private(set) var wedged = false

    // ---- shared by both modes ----
    private let stopFlag = Atomic<Bool>(false)
    private let activeTasks = Atomic<Int>(0)
    /// The first `keptViolations` violations, and a count per oracle of all.
    private let violationLock = Locked<(list: [Violation], counts: [String: Int])>(([], [:]))
    public static let keptViolations = 1000
    /// Monotonic time (seconds) of the first violation reported since the engine was
    /// made or the schedule began.
    public private(set) var firstViolationTime: Double? {
        get { firstViolationTimeLock.withLock { $0 } }
        set { firstViolationTimeLock.withLock { $0 = newValue } }
    }
    private let firstViolationTimeLock = Locked<Double?>(nil)
    private let eventLock = Locked<[SimEvent]>([])
    /// Record the narration (`event`). Off in long runs; on when a failing
    /// schedule is replayed.
    public var recordEvents = false
    /// Stop the schedule at its first violation.
    public var stopOnViolation = true

    public init(mode: ExecutionMode, actorNames: [String]) {
        self.mode = mode
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&mainCond, nil)
        precondition(actorNames.count <= Int(UInt16.max))
        executors = actorNames.enumerated().map { SimExecutor(id: $0.offset, name: $0.element, engine: self) }
        for e in executors { e.startThread() }
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&mainCond)
    }

    /// Ends the threads. Call once, when no schedule is running.
    public func shutdown() {
        guard !wedged else { return }
        for e in executors {
            if mode == .deterministic {
                pthread_mutex_lock(&mutex); e.shutdown = true; pthread_cond_signal(&e.cond); pthread_mutex_unlock(&mutex)
            } else {
                pthread_mutex_lock(&e.localMutex); e.shutdown = true; pthread_cond_signal(&e.localCond); pthread_mutex_unlock(&e.localMutex)
            }
        }
        for e in executors { if let t = e.thread { pthread_join(t, nil) } }
        executors.removeAll()
    }

    // MARK: - stop, violations, events

    public var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }
    public func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    /// The first violations reported (at most `keptViolations`).
    public var violations: [Violation] { violationLock.withLock { $0.list } }
    /// Every violation reported, counted per oracle.
    public var violationCounts: [String: Int] { violationLock.withLock { $0.counts } }
    public var violationTotal: Int { violationLock.withLock { $0.counts.values.reduce(0, +) } }
    public var events: [SimEvent] { eventLock.withLock { $0 } }

    /// Name of the calling actor ("main" off the simulator's threads).
    public var currentActorName: String { SimExecutor.current?.name ?? "main" }

    /// Current step of the schedule (deterministic mode), else -1.
    public var currentStep: Int { mode == .deterministic ? decisions.count : -1 }

    /// Coverage-mark counts since the last `takeCoverage()`.
    private let coverage = AtomicWordsCounter(count: CoverageMark.capacity)

    /// Counts one visit of a protocol branch.
    @inline(__always)
    public func cover(_ mark: CoverageMark) { coverage.add(mark.index) }

    /// Returns the coverage counts by mark name (marks reached only) and zeroes them.
    public func takeCoverage() -> [String: Int] {
        let names = CoverageMark.all
        var out: [String: Int] = [:]
        for (i, n) in names.enumerated() {
            let c = coverage.take(i)
            if c > 0 { out[n] = c }
        }
        return out
    }

    /// Reports an invariant violation seen by an oracle.
    public func report(oracle: String, _ message: String) {
        let v = Violation(oracle: oracle, message: message, step: currentStep, actor: currentActorName)
        let isFirst = violationLock.withLock { s in
            s.counts[oracle, default: 0] += 1
            if s.list.count < SimEngine.keptViolations { s.list.append(v) }
            return s.list.count == 1 && s.counts.count == 1 && s.counts[oracle] == 1
        }
        if isFirst { firstViolationTime = SimEngine.monotonicSeconds() }
        if recordEvents { event("VIOLATION [\(oracle)] \(message)") }
        if stopOnViolation { requestStop() }
    }

    /// CLOCK_MONOTONIC in seconds (wall time of runs; never used for decisions).
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Adds a line to the narration of the run (only when `recordEvents`).
    @inline(__always)
    public func event(_ text: @autoclosure () -> String) {
        guard recordEvents else { return }
        let e = SimEvent(step: currentStep, actor: currentActorName, text: text())
        eventLock.withLock { $0.append(e) }
    }

    // MARK: - starting work

    /// Starts `body` as a task on `executor`'s thread (its task executor preference),
    /// so that it never touches the global concurrent pool.
    public func spawn(on executor: SimExecutor, _ body: @escaping @Sendable () async -> Void) {
        activeTasks.add(1, ordering: .acquiringAndReleasing)
        Task(executorPreference: executor) { [self] in
            await body()
            if activeTasks.subtract(1, ordering: .acquiringAndReleasing).newValue == 0, mode == .parallel {
                pthread_mutex_lock(&mutex); pthread_cond_broadcast(&mainCond); pthread_mutex_unlock(&mutex)
            }
        }
    }

    func enqueue(_ job: UnownedJob, on e: SimExecutor) {
        if mode == .deterministic {
            pthread_mutex_lock(&mutex)
            e.queue.append(job)
            if e.state == .idle { e.state = .ready }
            pthread_mutex_unlock(&mutex)
        } else {
            pthread_mutex_lock(&e.localMutex)
            e.queue.append(job)
            pthread_cond_signal(&e.localCond)
            pthread_mutex_unlock(&e.localMutex)
        }
    }

    // MARK: - deterministic schedules

    /// Prepares a new schedule: clears the stop flag, violations, events and the step log.
    public func beginSchedule(strategy: SchedulingStrategy, scheduleSeed: UInt64) {
        precondition(!wedged, "engine wedged by an earlier deadlock")
        self.strategy = strategy
        strategy.reset(scheduleSeed: scheduleSeed, actorCount: executors.count)
        decisions.removeAll(keepingCapacity: true)
        stepLog.removeAll(keepingCapacity: true)
        hasher = FNV1a64()
        deadlocked = false
        hung = false
        stopFlag.store(false, ordering: .relaxed)
        violationLock.withLock { $0 = ([], [:]) }
        eventLock.withLock { $0.removeAll() }
    }

    /// Hash of every (actor, point) step of the schedule.
    public var scheduleHash: UInt64 { hasher.value }

    /// Runs the spawned tasks of the current schedule to quiescence, one step at a time.
    /// Returns when every actor is idle, or on deadlock (see `deadlocked`).
    public func runSchedule() {
        precondition(mode == .deterministic)
        pthread_mutex_lock(&mutex)
        scheduleDone = false
        if let next = pickNext(previous: -1) {
            grant(next)
            while !scheduleDone { pthread_cond_wait(&mainCond, &mutex) }
        }
        pthread_mutex_unlock(&mutex)
        if deadlocked {
            report(oracle: "deadlock", "no actor can run but \(activeTasks.load(ordering: .relaxed)) task(s) have not finished")
        }
    }

    /// A named scheduling point. In deterministic mode the caller's thread gives the
    /// baton to the strategy's choice and blocks until chosen again.
    /// Inlinable so that in parallel mode a point costs one compare in the caller.
    @inlinable @inline(__always)
    public func point(_ name: StaticString) {
        guard mode == .deterministic else { return }
        deterministicPoint(name)
    }

    @usableFromInline
    func deterministicPoint(_ name: StaticString) {
        guard let me = SimExecutor.current else { return }
        pause(me, at: name, until: nil)
    }

    /// A scheduling point where the caller retries or spins without progress
    /// (a `goto retry`, a cancelled guest entry). Deterministic strategies use it
    /// for fairness: PCT drops the caller's priority below everyone else's.
    public func yieldPoint(_ name: StaticString) {
        guard mode == .deterministic, let me = SimExecutor.current else { return }
        pthread_mutex_lock(&mutex)
        strategy.yielded(me.id)
        pthread_mutex_unlock(&mutex)
        pause(me, at: name, until: nil)
    }

    /// Blocks until `condition` holds. The condition must read only shared state that
    /// other actors change (atomics, locks' words). Deterministic mode: the caller is
    /// not picked while the condition is false. Parallel mode: spins with sched_yield.
    public func waitUntil(_ name: StaticString, _ condition: @escaping () -> Bool) {
        if mode == .parallel || SimExecutor.current == nil {
            var spins = 0
            while !condition() {
                spins += 1
                if spins > 64 { kvmsim_cpu_relax() }
            }
            return
        }
        if condition() { pause(SimExecutor.current!, at: name, until: nil); if condition() { return } }
        while !condition() { pause(SimExecutor.current!, at: name, until: condition) }
    }

    private func pause(_ me: SimExecutor, at name: StaticString, until condition: (() -> Bool)?) {
        pthread_mutex_lock(&mutex)
        me.state = .paused
        me.pausedPoint = name
        me.waitPredicate = condition
        if let next = pickNext(previous: me.id) {
            if next !== me {
                grant(next)
                while baton != me.id && !me.shutdown { pthread_cond_wait(&me.cond, &mutex) }
            }
        } else {
            // Nobody, not even the caller, can run: deadlock.
            deadlocked = true
            wedged = true
            scheduleDone = true
            pthread_cond_signal(&mainCond)
            while true { pthread_cond_wait(&me.cond, &mutex) }
        }
        me.state = .running
        me.waitPredicate = nil
        pthread_mutex_unlock(&mutex)
    }

    /// Picks the next executor to run (mutex held) and records the step.
    private func pickNext(previous: Int) -> SimExecutor? {
        var runnable: [Int] = []
        runnable.reserveCapacity(executors.count)
        for e in executors {
            switch e.state {
            case .ready: runnable.append(e.id)
            case .paused: if e.waitPredicate?() ?? true { runnable.append(e.id) }
            case .idle, .running: break
            }
        }
        guard !runnable.isEmpty else { return nil }
        let step = decisions.count
        let chosen = strategy.choose(runnable: runnable, step: step, previous: previous)
        decisions.append(UInt16(chosen))
        let e = executors[chosen]
        let point: StaticString = e.state == .ready ? "job" : e.pausedPoint
        hasher.combine(UInt64(chosen) << 32 ^ Self.hashName(point))
        if recordSteps { stepLog.append((chosen, point)) }
        if step >= maxSteps && !hung { hung = true; stopFlag.store(true, ordering: .relaxed) }
        return e
    }

    private func grant(_ e: SimExecutor) {
        baton = e.id
        pthread_cond_signal(&e.cond)
    }

    static func hashName(_ s: StaticString) -> UInt64 {
        var h = FNV1a64()
        s.withUTF8Buffer { buf in for b in buf { h.combine(UInt64(b)) } }
        return h.value
    }

    // MARK: - thread loops

    func threadLoop(_ me: SimExecutor) {
        if mode == .deterministic { deterministicLoop(me) } else { parallelLoop(me) }
    }

    private func deterministicLoop(_ me: SimExecutor) {
        pthread_mutex_lock(&mutex)
        while true {
            while !(baton == me.id && !me.queueIsEmpty) && !me.shutdown {
                pthread_cond_wait(&me.cond, &mutex)
            }
            if me.shutdown { break }
            let job = me.popJob()
            me.state = .running
            pthread_mutex_unlock(&mutex)
            me.run(job)
            pthread_mutex_lock(&mutex)
            me.state = me.queueIsEmpty ? .idle : .ready
            if let next = pickNext(previous: me.id) {
                grant(next)
            } else {
                baton = -1
                if executors.contains(where: { $0.state == .paused }) { deadlocked = true; wedged = true }
                scheduleDone = true
                pthread_cond_signal(&mainCond)
            }
        }
        pthread_mutex_unlock(&mutex)
    }

    private func parallelLoop(_ me: SimExecutor) {
        while true {
            pthread_mutex_lock(&me.localMutex)
            while me.queueIsEmpty && !me.shutdown { pthread_cond_wait(&me.localCond, &me.localMutex) }
            if me.shutdown && me.queueIsEmpty { pthread_mutex_unlock(&me.localMutex); break }
            let job = me.popJob()
            pthread_mutex_unlock(&me.localMutex)
            me.run(job)
        }
    }

    // MARK: - parallel runs

    /// Parallel mode: waits until every spawned task has finished.
    public func waitForTasks() {
        pthread_mutex_lock(&mutex)
        while activeTasks.load(ordering: .acquiring) != 0 {
            pthread_cond_wait(&mainCond, &mutex)
        }
        pthread_mutex_unlock(&mutex)
    }
}
