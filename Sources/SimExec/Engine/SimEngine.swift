// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CURCU
import CFiber

/// How a run executes the (single) model code.
public enum ExecutionMode: String, Sendable, CaseIterable, Codable {
    /// One thread runs at a time; a seeded strategy picks every step.
    case deterministic
    /// Every actor's thread runs for real, concurrently.
    case parallel
}

/// The execution engine: owns one `SimExecutor` per actor and, in deterministic
/// mode, the baton that only one executor holds at a time.
///
/// Model code sees the engine through three calls:
/// - `point(_:)`: a named scheduling point, where the kernel could be preempted,
///   sleep, or be overtaken by another CPU. Synchronous: it can stand anywhere,
///   including inside an RCU read section or a spinlock-held region.
/// - `waitUntil(_:_:)`: block (spin, sleep) until a condition holds, e.g. a
///   spinlock is free or a grace period has ended. Deterministic mode never runs
///   a waiter whose condition is false.
/// - `report(_:_:)` / `event(_:)`: oracles' violations and the narration of a run.
///
/// The type is one class (so that the per-step paths inline) written in facets:
/// - this file: the stored state, building and ending an engine, starting work;
/// - `SimEngine+Baton.swift`: deterministic schedules (points, waits, picking);
/// - `SimEngine+Fibers.swift`, `SimEngine+Threads.swift`: the two ways
///   deterministic mode passes the baton;
/// - `SimEngine+Parallel.swift`: the real-thread runtime;
/// - `SimEngine+RunRecord.swift`: stop requests, violations, narration,
///   coverage and the schedule's hash.
///
/// Deterministic mode: every decision is made by the strategy from the schedule's
/// seed; nothing else (clocks, hashing, thread timing) affects which thread runs.
/// Locking: with the thread backend, `mutex` guards the baton, executor states and
/// queues, the step log (a thread returns from `pthread_cond_wait` holding it).
/// With fibers there is one thread: the one that calls `spawn` and `runSchedule`,
/// on which every executor's fiber runs; the scheduler's state needs no lock, and
/// `lockScheduler()` does nothing. (So deterministic-mode model code must never
/// hand work to a thread outside the simulator, which it could not replay anyway.)
public final class SimEngine: @unchecked Sendable {
    public let mode: ExecutionMode

    // The scheduler's state below is guarded by `mutex` and never passed inout to
    // overlapping accesses, so the dynamic exclusivity checks (about an eighth of a
    // deterministic step's instructions) are turned off for it with @exclusivity(unchecked).

    /// Deterministic mode's baton passing (`.threads` in parallel mode, where every
    /// executor has a thread, and where the runtime does not support fibers).
    public let backend: DeterministicBackend
    /// Fiber backend: the context of the thread inside `runSchedule` or `shutdown` (mutex).
    @exclusivity(unchecked) var threadFiber: OpaquePointer?
    @exclusivity(unchecked) var fiberLayoutChecked = false
    /// A task was spawned in deterministic mode: the fiber layout check is due
    /// at the first point inside one. Body jobs run no task, so a run of
    /// workloads alone never makes the check (FiberBackendTests still do, and
    /// `kvmsim_fibers_supported` still checks the runtime's block sizes); body
    /// jobs rely on the moved runtime slots less: only an `assumeIsolated`
    /// inside one reads the executor-tracking slot, which a fiber starts with
    /// zeroed (workloads call no `assumeIsolated` since 2026-12-08).
    @exclusivity(unchecked) var tasksSpawned = false
    /// Body jobs queued or running (`spawnBody`); engine mutex.
    @exclusivity(unchecked) var pendingBodies = 0
    static let fiberStackSize = 4 << 20
    @exclusivity(unchecked) public internal(set) var executors: [SimExecutor] = []

    @exclusivity(unchecked) var mutex = pthread_mutex_t()
    @exclusivity(unchecked) var mainCond = pthread_cond_t()

    // ---- deterministic state (mutex) ----
    @exclusivity(unchecked) var baton = -1
    @exclusivity(unchecked) var scheduleDone = false
    /// The schedule's strategy, in a box the engine keeps alive (`strategyBox`)
    /// and reads through an unmanaged reference at every step: borrowed, so a
    /// step does no reference counting (an `unowned(unsafe)` reference would be
    /// retained and released at each use).
    final class StrategyBox {
        let strategy: SchedulingStrategy
        /// The strategy when it is a `RandomStrategy` (the default), called
        /// directly and inlined instead of through the protocol's witness.
        let random: Unmanaged<RandomStrategy>?
        init(_ s: SchedulingStrategy) {
            strategy = s
            random = (s as? RandomStrategy).map { Unmanaged.passUnretained($0) }
        }
    }
    @exclusivity(unchecked) var strategyBox = StrategyBox(RandomStrategy())
    @exclusivity(unchecked) var strategyRef: Unmanaged<StrategyBox>
    @exclusivity(unchecked) var pointHashCache = [(key: UInt, hash: UInt64)](repeating: (0, 0), count: SimEngine.pointHashSlots)
    /// Scratch list of runnable executor ids (`pickNext`), one slot per executor.
    let runnableBuffer: UnsafeMutablePointer<Int>
    /// `executors` without reference counting, for the per-step loops (`executors`
    /// keeps them alive until `shutdown`, after which no step runs).
    let executorTable: UnsafeMutableBufferPointer<Unmanaged<SimExecutor>>
    /// Executor chosen at each step of the current schedule.
    @exclusivity(unchecked) var decisionLog = DecisionLog()
    /// Executor chosen at each step of the current schedule (a copy).
    public var decisions: [UInt16] { decisionLog.array }
    /// Steps of the current schedule (`decisions.count`, without the copy).
    public var stepCount: Int { decisionLog.count }
    /// Point at which each step's chosen actor resumed (only with `recordSteps`).
    @exclusivity(unchecked) public internal(set) var stepLog: [(actor: Int, point: StaticString)] = []
    @exclusivity(unchecked) public var recordSteps = false
    @exclusivity(unchecked) var hasher = StepHash()
    /// Steps after which a schedule counts as a hang (livelock oracle).
    @exclusivity(unchecked) public var maxSteps = 200_000
    @exclusivity(unchecked) public internal(set) var deadlocked = false
    @exclusivity(unchecked) public internal(set) var hung = false
    /// True once a deadlock left threads stuck; the engine cannot run again.
    @exclusivity(unchecked) public internal(set) var wedged = false

    // ---- shared by both modes (SimEngine+RunRecord.swift) ----
    @usableFromInline let stopFlag = Atomic<Bool>(false)
    let activeTasks = Atomic<Int>(0)
    /// The first `keptViolations` violations, and a count per oracle of all.
    let violationLock = Locked<(list: [Violation], counts: [String: Int])>(([], [:]))
    public static let keptViolations = 1000
    let firstViolationTimeLock = Locked<Double?>(nil)
    let eventLock = Locked<[SimEvent]>([])
    /// Record the narration (`event`). Off in long runs; on when a failing
    /// schedule is replayed.
    @exclusivity(unchecked) public var recordEvents = false
    /// Stop the schedule at its first violation.
    @exclusivity(unchecked) public var stopOnViolation = true
    /// Coverage counts since the last `takeCoverage(into:)`, `CoverageMark.capacity` a row. Parallel mode: a row per
    /// executor and a last one for other threads (per-CPU counters, so that
    /// real threads reaching the same mark, a fast path taken at every TLB
    /// refill, do not bounce one cache line); deterministic mode: one row.
    let coverage: AtomicWords
    let coverageRows: Int
    /// Parallel mode: record every point each executor passes, with a timestamp
    /// (`SimEngine+Recording.swift`). Set between runs, while no task runs.
    @exclusivity(unchecked) public var recordPasses = false
    /// Parallel mode, episodes: an RCU barrier at the end of each world returns
    /// at once (liburcu's call_rcu thread batches every 10 ms, which would bound
    /// episodes at 100 a second); callbacks, which hold what they free, finish
    /// during later episodes, and the run waits for all of them at its end.
    @exclusivity(unchecked) public var deferRCUBarriers = false

    /// Weak-memory mode (`StoreBuffer.swift`): the executors that drain a
    /// store buffer instead of running code, by executor id (engine mutex).
    @exclusivity(unchecked) var drainerRoles: [DrainerRole?]
    @exclusivity(unchecked) var hasDrainers = false

    /// Where deterministic mode can switch actors: at named points only, or also
    /// at every access to kernel memory (`AccessPoints.swift`).
    public let points: PointGranularity

    public init(mode: ExecutionMode, actorNames: [String], backend: DeterministicBackend = .preferred,
                points: PointGranularity = .named) {
        self.mode = mode
        self.points = points
        self.backend = mode == .deterministic && (backend == .threads || DeterministicBackend.fibersSupported) ? backend : .threads
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&mainCond, nil)
        precondition(actorNames.count <= Int(UInt16.max))
        runnableBuffer = .allocate(capacity: max(1, actorNames.count))
        drainerRoles = Array(repeating: nil, count: actorNames.count)
        coverageRows = mode == .parallel ? actorNames.count + 1 : 1
        coverage = AtomicWords(count: CoverageMark.capacity * coverageRows)
        executorTable = .allocate(capacity: actorNames.count)
        strategyRef = Unmanaged.passUnretained(strategyBox)
        // Access-level points: switches in deterministic mode; in parallel mode
        // (recording), passes noted in the executors' buffers.
        let gate: Int32 = points == .accesses ? 1 : 0
        executors = actorNames.enumerated().map { SimExecutor(id: $0.offset, name: $0.element, engine: self, accessGate: gate) }
        _ = executorTable.initialize(from: executors.map { Unmanaged.passUnretained($0) })
        if self.backend == .threads { for e in executors { e.startThread() } }
    }

    deinit {
        if hasDrainers { kvmsim_store_buffers_add(-1) }
        runnableBuffer.deallocate()
        decisionLog.free()
        executorTable.deallocate()
        coverage.free()
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&mainCond)
    }

    /// Ends the threads. Call once, when no schedule is running.
    public func shutdown() {
        guard !wedged else { return }
        let all = executors
        if backend == .fibers { shutdownFibers() } else { shutdownThreads() }
        // Body jobs never run hold their closures, and through them the engine
        // and their actors (whose executors hold the queues): drop them, now
        // that no executor's thread or fiber runs (parallel mode's threads
        // read their queues until joined). A queued task's job is dropped
        // too, and its task leaks, as before.
        for e in all { e.queue.removeAll(); e.queueHead = 0 }
    }

    // MARK: - starting work

    /// Starts `body` as a task on `executor`'s thread (its task executor preference),
    /// so that it never touches the global concurrent pool.
    public func spawn(on executor: SimExecutor, _ body: @escaping @Sendable () async -> Void) {
        if mode == .deterministic { tasksSpawned = true }
        activeTasks.add(1, ordering: .acquiringAndReleasing)
        Task(executorPreference: executor) { [self] in
            await body()
            if activeTasks.subtract(1, ordering: .acquiringAndReleasing).newValue == 0, mode == .parallel {
                pthread_mutex_lock(&mutex); pthread_cond_broadcast(&mainCond); pthread_mutex_unlock(&mutex)
            }
        }
    }

    /// Deterministic mode: runs `body` on `executor` as a job of the queue,
    /// with no Swift task: where a task costs a schedule about 7,000
    /// instructions (creation, its executor preference record, its jobs,
    /// completion), a body job costs what appending a closure does. The body
    /// is synchronous and isolated to nothing: it runs on `e`
    /// (`SimExecutor.current`), which is what the model's workloads need
    /// (`start(_:on:)` in the Harness calls them directly); a body that wants
    /// an actor's isolation can take it with `assumeIsolated`, which the
    /// executor grants (`SimExecutor.checkIsolated`). Parallel mode runs tasks
    /// (`spawn`).
    public func spawnBody(on e: SimExecutor, _ body: @escaping () -> Void) {
        precondition(mode == .deterministic, "spawnBody is deterministic mode's; parallel mode spawns tasks")
        append(.body(body), on: e)
    }

    /// Deterministic mode: `job` at the end of `e`'s queue, `e` ready if idle.
    private func append(_ job: SimExecutor.Job, on e: SimExecutor) {
        lockScheduler()
        if case .body = job { pendingBodies += 1 }
        e.queue.append(job)
        if e.state == .idle { e.state = .ready }
        unlockScheduler()
    }

    func enqueue(_ job: UnownedJob, on e: SimExecutor) {
        if mode == .deterministic {
            append(.task(job), on: e)
        } else {
            pthread_mutex_lock(&e.localMutex)
            e.queue.append(.task(job))
            pthread_cond_signal(&e.localCond)
            pthread_mutex_unlock(&e.localMutex)
        }
    }

    /// An executor's thread starts its loop (thread backend and parallel mode).
    func threadLoop(_ me: SimExecutor) {
        if mode == .deterministic { threadDeterministicLoop(me) } else { parallelLoop(me) }
    }
}

/// How deterministic mode passes the baton. Both give the same schedule for a
/// seed (the strategy's choices are the same); they differ in cost.
extension SimEngine {
    public enum DeterministicBackend: String, Sendable {
        /// Every executor is a fiber (its own stack, `Sources/CFiber`) on the thread
        /// that calls `runSchedule`; a step is a user-level context switch.
        case fibers
        /// Every executor has a thread; a step is a condition-variable hand-off.
        case threads

        /// `KVMSIM_DETERMINISTIC_BACKEND=threads|fibers`, else fibers (an engine
        /// uses threads where the runtime does not support fibers).
        public static var preferred: DeterministicBackend {
            getenv("KVMSIM_DETERMINISTIC_BACKEND").flatMap { DeterministicBackend(rawValue: String(cString: $0)) } ?? .fibers
        }

        static var fibersSupported: Bool { kvmsim_fibers_supported(nil) != 0 }

        /// Why this process cannot use fibers (an engine then uses threads), or nil.
        public static var fibersUnavailableReason: String? {
            var reason: UnsafePointer<CChar>? = nil
            guard kvmsim_fibers_supported(&reason) == 0 else { return nil }
            return reason.map { String(cString: $0) } ?? "unknown reason"
        }
    }
}
