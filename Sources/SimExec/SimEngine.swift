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
/// Locking: with the thread backend, `mutex` guards the baton, executor states and
/// queues, the step log (a thread returns from `pthread_cond_wait` holding it).
/// With fibers there is one thread: the one that calls `spawn` and `runSchedule`,
/// on which every executor's fiber runs; the scheduler's state needs no lock, and
/// `lockScheduler()` does nothing. (So deterministic-mode model code must never
/// hand work to a thread outside the simulator, which it could not replay anyway.)
public final class SimEngine: @unchecked Sendable {
    public let mode: ExecutionMode

    /// How deterministic mode passes the baton. Both give the same schedule for a
    /// seed (the strategy's choices are the same); they differ in cost.
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

    // The scheduler's state below is guarded by `mutex` and never passed inout to
    // overlapping accesses, so the dynamic exclusivity checks (about an eighth of a
    // deterministic step's instructions) are turned off for it with @exclusivity(unchecked).

    /// Deterministic mode's baton passing (`.threads` in parallel mode, where every
    /// executor has a thread, and where the runtime does not support fibers).
    public let backend: DeterministicBackend
    /// Fiber backend: the context of the thread inside `runSchedule` or `shutdown` (mutex).
    @exclusivity(unchecked) private var threadFiber: OpaquePointer?
    @exclusivity(unchecked) private var fiberLayoutChecked = false
    static let fiberStackSize = 4 << 20
    @exclusivity(unchecked) public private(set) var executors: [SimExecutor] = []

    @exclusivity(unchecked) private var mutex = pthread_mutex_t()
    @exclusivity(unchecked) private var mainCond = pthread_cond_t()

    // ---- deterministic state (mutex) ----
    @exclusivity(unchecked) private var baton = -1
    @exclusivity(unchecked) private var scheduleDone = false
    /// The schedule's strategy, in a box the engine keeps alive (`strategyBox`)
    /// and reads through an unmanaged reference at every step: borrowed, so a
    /// step does no reference counting (an `unowned(unsafe)` reference would be
    /// retained and released at each use).
    private final class StrategyBox {
        let strategy: SchedulingStrategy
        init(_ s: SchedulingStrategy) { strategy = s }
    }
    @exclusivity(unchecked) private var strategyBox = StrategyBox(RandomStrategy())
    @exclusivity(unchecked) private var strategyRef: Unmanaged<StrategyBox>
    /// Calls `body` with the schedule's strategy, borrowed.
    @inline(__always)
    private func withStrategy<R>(_ body: (SchedulingStrategy) -> R) -> R {
        strategyRef._withUnsafeGuaranteedRef { body($0.strategy) }
    }
    @exclusivity(unchecked) private var pointHashCache = [(key: UInt, hash: UInt64)](repeating: (0, 0), count: SimEngine.pointHashSlots)
    /// Scratch list of runnable executor ids (`pickNext`), one slot per executor.
    private let runnableBuffer: UnsafeMutablePointer<Int>
    /// `executors` without reference counting, for the per-step loops (`executors`
    /// keeps them alive until `shutdown`, after which no step runs).
    private let executorTable: UnsafeMutableBufferPointer<Unmanaged<SimExecutor>>
    /// Executor chosen at each step of the current schedule.
    @exclusivity(unchecked) public private(set) var decisions: [UInt16] = []
    /// Point at which each step's chosen actor resumed (only with `recordSteps`).
    @exclusivity(unchecked) public private(set) var stepLog: [(actor: Int, point: StaticString)] = []
    @exclusivity(unchecked) public var recordSteps = false
    @exclusivity(unchecked) private var hasher = StepHash()
    /// Steps after which a schedule counts as a hang (livelock oracle).
    @exclusivity(unchecked) public var maxSteps = 200_000
    @exclusivity(unchecked) public private(set) var deadlocked = false
    @exclusivity(unchecked) public private(set) var hung = false
    /// True once a deadlock left threads stuck; the engine cannot run again.
    @exclusivity(unchecked) public private(set) var wedged = false

    // ---- shared by both modes ----
    @usableFromInline let stopFlag = Atomic<Bool>(false)
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
    @exclusivity(unchecked) public var recordEvents = false
    /// Stop the schedule at its first violation.
    @exclusivity(unchecked) public var stopOnViolation = true

    public init(mode: ExecutionMode, actorNames: [String], backend: DeterministicBackend = .preferred) {
        self.mode = mode
        self.backend = mode == .deterministic && (backend == .threads || DeterministicBackend.fibersSupported) ? backend : .threads
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&mainCond, nil)
        precondition(actorNames.count <= Int(UInt16.max))
        runnableBuffer = .allocate(capacity: max(1, actorNames.count))
        executorTable = .allocate(capacity: actorNames.count)
        strategyRef = Unmanaged.passUnretained(strategyBox)
        executors = actorNames.enumerated().map { SimExecutor(id: $0.offset, name: $0.element, engine: self) }
        _ = executorTable.initialize(from: executors.map { Unmanaged.passUnretained($0) })
        if self.backend == .threads { for e in executors { e.startThread() } }
    }

    deinit {
        runnableBuffer.deallocate()
        executorTable.deallocate()
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&mainCond)
    }

    /// Ends the threads. Call once, when no schedule is running.
    public func shutdown() {
        guard !wedged else { return }
        if backend == .fibers { shutdownFibers(); return }
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

    /// Inlinable: wait predicates and guest loops test it at every step.
    @inlinable public var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }
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
    /// Inlinable: when nothing records, an event costs the caller one load and
    /// compare, and its text is never built.
    @inlinable @inline(__always)
    public func event(_ text: @autoclosure () -> String) {
        guard recordEvents else { return }
        appendEvent(text())
    }

    @usableFromInline
    func appendEvent(_ text: String) {
        let e = SimEvent(step: currentStep, actor: currentActorName, text: text)
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
            lockScheduler()
            e.queue.append(job)
            if e.state == .idle { e.state = .ready }
            unlockScheduler()
        } else {
            pthread_mutex_lock(&e.localMutex)
            e.queue.append(job)
            pthread_cond_signal(&e.localCond)
            pthread_mutex_unlock(&e.localMutex)
        }
    }

    // MARK: - deterministic schedules

    /// Takes `mutex`, which guards the scheduler's state, with the thread backend.
    /// A no-op with fibers: every executor and the caller of `runSchedule` run on
    /// one thread, one at a time, so nothing can race (this was 5% of a step).
    @inline(__always) private func lockScheduler() { if backend == .threads { pthread_mutex_lock(&mutex) } }
    @inline(__always) private func unlockScheduler() { if backend == .threads { pthread_mutex_unlock(&mutex) } }

    /// Prepares a new schedule: clears the stop flag, violations, events and the step log.
    public func beginSchedule(strategy: SchedulingStrategy, scheduleSeed: UInt64) {
        precondition(!wedged, "engine wedged by an earlier deadlock")
        if strategyBox.strategy !== strategy {               // a run keeps one strategy: box it once
            strategyBox = StrategyBox(strategy)
            strategyRef = Unmanaged.passUnretained(strategyBox)
        }
        strategy.reset(scheduleSeed: scheduleSeed, actorCount: executors.count)
        decisions.removeAll(keepingCapacity: true)
        stepLog.removeAll(keepingCapacity: true)
        hasher = StepHash()
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
        lockScheduler()
        scheduleDone = false
        if let next = pickNext(previous: -1) {
            grant(next)
            switch backend {
            case .threads:
                while !scheduleDone { pthread_cond_wait(&mainCond, &mutex) }
            case .fibers:
                onThreadFiber { switchFiber(from: $0, to: next) }
            }
        }
        unlockScheduler()
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
        SimExecutor.withCurrent { pause($0, at: name, until: nil) }
    }

    /// Gives the baton to `next`; if that is another executor, returns when the
    /// caller holds the baton again (mutex held on entry and on return).
    private func handOff(from me: SimExecutor, to next: Int) {
        grant(next)
        guard next != me.id else { return }
        switch backend {
        case .threads: while baton != me.id && !me.shutdown { pthread_cond_wait(&me.cond, &mutex) }
        case .fibers: switchFiber(from: me.fiber!, to: next)
        }
    }

    /// Fiber backend: switches from the context `from` to executor `to` (or, with
    /// nil, back to the thread in `runSchedule`/`shutdown`). Mutex held.
    private func switchFiber(from: OpaquePointer, to next: Int?) {
        guard let next else {
            SimExecutor.setCurrent(nil)
            kvmsim_fiber_switch(from, threadFiber!)
            return
        }
        unowned(unsafe) let target = executorTable[next].takeUnretainedValue()
        if target.fiber == nil {
            guard let f = kvmsim_fiber_create(Self.fiberStackSize, simExecutorFiberMain, Unmanaged.passUnretained(target).toOpaque()) else {
                fatalError("kvmsim: cannot map a \(Self.fiberStackSize >> 20) MiB fiber stack")
            }
            target.fiber = f
        }
        SimExecutor.setCurrent(target)
        kvmsim_fiber_switch(from, target.fiber!)
    }

    /// Fiber backend: the first point of a schedule checks, inside a running task,
    /// that the fibers move the runtime's current-task slot (see Sources/CFiber).
    private func checkFiberLayout() {
        fiberLayoutChecked = true
        if kvmsim_fiber_check_active_task() == 0 {
            fatalError("kvmsim: this Swift runtime's thread-local layout differs from the one the fiber backend knows; run with KVMSIM_DETERMINISTIC_BACKEND=threads")
        }
    }

    /// A scheduling point where the caller retries or spins without progress
    /// (a `goto retry`, a cancelled guest entry). Deterministic strategies use it
    /// for fairness: PCT drops the caller's priority below everyone else's.
    public func yieldPoint(_ name: StaticString) {
        guard mode == .deterministic else { return }
        SimExecutor.withCurrent { me in
            lockScheduler()
            withStrategy { $0.yielded(me.id) }
            unlockScheduler()
            pause(me, at: name, until: nil)
        }
    }

    /// Blocks until `condition` holds. The condition must read only shared state that
    /// other actors change (atomics, locks' words). Deterministic mode: the caller is
    /// not picked while the condition is false. Parallel mode: spins with sched_yield.
    /// The condition does not escape (no allocation per wait): a paused waiter's
    /// predicate is cleared before `pause` returns.
    public func waitUntil(_ name: StaticString, _ condition: () -> Bool) {
        if mode == .deterministic {
            let waited: Void? = SimExecutor.withCurrent { me in
                if condition() { pause(me, at: name, until: nil); if condition() { return } }
                withoutActuallyEscaping(condition) { condition in
                    withUnsafePointer(to: WaitCondition(holds: condition)) { predicate in
                        while !condition() { pause(me, at: name, until: predicate) }
                    }
                }
            }
            if waited != nil { return }
        }
        // Parallel mode, or a thread no executor runs: spin.
        var spins = 0
        while !condition() {
            spins += 1
            if spins > 64 { kvmsim_cpu_relax() }
        }
    }

    private func pause(_ me: SimExecutor, at name: StaticString, until condition: UnsafePointer<WaitCondition>?) {
        if backend == .fibers && !fiberLayoutChecked { checkFiberLayout() }
        lockScheduler()
        me.state = .paused
        me.pausedPoint = name
        me.waitPredicate = condition
        if let next = pickNext(previous: me.id) {
            handOff(from: me, to: next)
        } else {
            // Nobody, not even the caller, can run: deadlock. The caller never resumes.
            deadlocked = true
            wedged = true
            scheduleDone = true
            switch backend {
            case .threads:
                pthread_cond_signal(&mainCond)
                while true { pthread_cond_wait(&me.cond, &mutex) }
            case .fibers:
                switchFiber(from: me.fiber!, to: nil)
                fatalError("a deadlocked fiber was resumed")
            }
        }
        me.state = .running
        me.waitPredicate = nil
        unlockScheduler()
    }

    /// Picks the next executor to run (mutex held) and records the step.
    /// (The executors and the strategy outlive every schedule, so the loop reads
    /// them through unmanaged references: no reference counting a step.)
    private func pickNext(previous: Int) -> Int? {
        var count = 0
        for i in executorTable.indices {
            // Borrowed, not copied: an `unowned(unsafe)` local is a strong copy,
            // retained and released around every use.
            let runnable = executorTable[i]._withUnsafeGuaranteedRef { e -> Bool in
                switch e.state {
                case .ready: return true
                case .paused: return e.waitPredicate?.pointee.holds() ?? true
                case .idle, .running: return false
                }
            }
            if runnable { runnableBuffer[count] = i; count += 1 }
        }
        guard count > 0 else { return nil }
        let step = decisions.count
        let runnable = UnsafeBufferPointer(start: runnableBuffer, count: count)
        let chosen = withStrategy { $0.choose(runnable: runnable, step: step, previous: previous) }
        decisions.append(UInt16(chosen))
        let point: StaticString = executorTable[chosen]._withUnsafeGuaranteedRef { $0.state == .ready ? "job" : $0.pausedPoint }
        hasher.combine(UInt64(chosen) << 32 ^ pointHash(point))
        if recordSteps { stepLog.append((chosen, point)) }
        if step >= maxSteps && !hung { hung = true; stopFlag.store(true, ordering: .relaxed) }
        return chosen
    }

    private func grant(_ next: Int) {
        baton = next
        if backend == .threads { pthread_cond_signal(&executorTable[next].takeUnretainedValue().cond) }
    }

    /// `hashName`, cached by the string's address (a point's name is a literal; the
    /// hash itself depends only on its bytes, so traces hash alike in every process).
    @inline(__always)
    private func pointHash(_ s: StaticString) -> UInt64 {
        guard s.hasPointerRepresentation else { return Self.hashName(s) }
        let key = UInt(bitPattern: s.utf8Start)
        let slot = Int(truncatingIfNeeded: (key >> 3) ^ (key >> 11)) & (Self.pointHashSlots - 1)
        if pointHashCache[slot].key == key { return pointHashCache[slot].hash }
        let h = Self.hashName(s)
        pointHashCache[slot] = (key, h)
        return h
    }
    static let pointHashSlots = 256

    static func hashName(_ s: StaticString) -> UInt64 {
        var h = FNV1a64()
        s.withUTF8Buffer { buf in for b in buf { h.combine(UInt64(b)) } }
        return h.value
    }

    // MARK: - thread loops

    func threadLoop(_ me: SimExecutor) {
        if mode == .deterministic { threadDeterministicLoop(me) } else { parallelLoop(me) }
    }

    /// An executor's life in deterministic mode: run a job whenever it holds the
    /// baton, then pass the baton on (or end the schedule). Thread backend: mutex
    /// held except while a job runs.
    func deterministicLoop(_ me: SimExecutor) {
        while true {
            while !(baton == me.id && !me.queueIsEmpty) && !me.shutdown {
                switch backend {
                case .threads: pthread_cond_wait(&me.cond, &mutex)
                case .fibers: switchFiber(from: me.fiber!, to: nil)  // not expected: a fiber runs only when picked
                }
            }
            if me.shutdown { break }
            let job = me.popJob()
            me.state = .running
            unlockScheduler()
            me.run(job)
            lockScheduler()
            me.state = me.queueIsEmpty ? .idle : .ready
            if let next = pickNext(previous: me.id) {
                handOff(from: me, to: next)
            } else {
                baton = -1
                if executors.contains(where: { $0.state == .paused }) { deadlocked = true; wedged = true }
                scheduleDone = true
                switch backend {
                case .threads: pthread_cond_signal(&mainCond)
                case .fibers: switchFiber(from: me.fiber!, to: nil)
                }
            }
        }
    }

    private func threadDeterministicLoop(_ me: SimExecutor) {
        pthread_mutex_lock(&mutex)
        deterministicLoop(me)
        pthread_mutex_unlock(&mutex)
    }

    /// Fiber backend: lets every started fiber leave its loop, then frees the stacks.
    private func shutdownFibers() {
        onThreadFiber { thread in
            for e in executors {
                e.shutdown = true
                guard let f = e.fiber else { continue }
                kvmsim_fiber_set_exit(f, thread)
                switchFiber(from: thread, to: e.id)
                precondition(kvmsim_fiber_finished(f) != 0)
                kvmsim_fiber_destroy(f)
                e.fiber = nil
            }
        }
        executors.removeAll()
    }

    /// Fiber backend: runs `body` with the calling thread's own context recorded
    /// as `threadFiber`, the context fibers switch back to (mutex held).
    private func onThreadFiber(_ body: (OpaquePointer) -> Void) {
        guard let thread = kvmsim_fiber_create_for_thread() else { fatalError("kvmsim: out of memory") }
        threadFiber = thread
        body(thread)
        SimExecutor.setCurrent(nil)
        kvmsim_fiber_destroy(thread)
        threadFiber = nil
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
