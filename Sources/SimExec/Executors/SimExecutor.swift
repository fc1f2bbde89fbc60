// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CURCU
import CFiber

/// A serial (and task) executor backed by one long-lived pthread of its own.
///
/// Every host CPU actor and every vcpu actor gets one `SimExecutor`; an actor's
/// `unownedExecutor` returns it, and tasks are started on it with
/// `Task(executorPreference:)` (in deterministic mode, workloads run as body
/// jobs instead: `SimEngine.spawnBody`). Owning the thread gives three things (in
/// deterministic mode the default backend replaces the threads by fibers on the
/// caller's thread, one stack per executor; see `SimEngine.DeterministicBackend`):
/// - deterministic mode can stop the thread in the middle of a job (a synchronous
///   scheduling point, e.g. inside an RCU read section or while spinning on
///   `mmu_lock`) and hand the baton to another thread;
/// - parallel mode runs real concurrent threads;
/// - the thread registers with liburcu once for its whole life, as liburcu requires.
///
/// Locking: in deterministic mode `queue` and `state` are guarded by the engine's
/// mutex; in parallel mode `queue` is guarded by this executor's own mutex.
public final class SimExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    public let id: Int
    public let name: String
    unowned let engine: SimEngine

    // Deterministic-mode bookkeeping (engine mutex). Lock-guarded state: no dynamic
    // exclusivity checks (see SimEngine).
    enum State { case idle, ready, running, paused }
    @exclusivity(unchecked) var state: State = .idle
    @exclusivity(unchecked) var pausedPoint: StaticString = "start"
    /// While paused in `SimEngine.waitUntil`: its condition, on the waiter's stack
    /// (valid until the waiter resumes; a pointer, so that parking it allocates
    /// nothing; each check still retains and releases the closure's context).
    @exclusivity(unchecked) var waitPredicate: UnsafePointer<WaitCondition>?
    @exclusivity(unchecked) var cond = pthread_cond_t()

    /// A job of the queue: a Swift task's, or (deterministic mode) a
    /// synchronous body that runs on this executor with no task at all
    /// (`SimEngine.spawnBody`).
    enum Job {
        case task(UnownedJob)
        case body(() -> Void)
    }

    // Jobs not yet started.
    @exclusivity(unchecked) var queue: [Job] = []
    @exclusivity(unchecked) var queueHead = 0
    var queueIsEmpty: Bool { queueHead == queue.count }

    // Parallel-mode queue lock.
    @exclusivity(unchecked) var localMutex = pthread_mutex_t()
    @exclusivity(unchecked) var localCond = pthread_cond_t()
    @exclusivity(unchecked) var shutdown = false
    var thread: pthread_t? = nil
    /// Deterministic mode, fiber backend: this executor's stack and context (made
    /// on first use); engine mutex.
    @exclusivity(unchecked) var fiber: OpaquePointer? = nil
    /// Parallel mode while recording: the points this executor passed, with a
    /// timestamp each (`SimEngine.recordPasses`). Written only by this
    /// executor's thread; read after the run's tasks have finished.
    @exclusivity(unchecked) public internal(set) var passes: [(stamp: UInt64, point: StaticString)] = []
    /// 1 when this executor's accesses to kernel memory are scheduling points
    /// (the engine's `points` is `.accesses`): switches in deterministic mode,
    /// recorded passes in parallel mode.
    let accessGate: Int32
    /// Weak-memory mode (`SimEngine.enableStoreBuffer`): this CPU's store
    /// buffer; nil when its stores go straight to memory. Set between schedules.
    @exclusivity(unchecked) public internal(set) var storeBuffer: StoreBuffer?

    init(id: Int, name: String, engine: SimEngine, accessGate: Int32) {
        self.id = id
        self.name = name
        self.engine = engine
        self.accessGate = accessGate
        pthread_cond_init(&cond, nil)
        pthread_mutex_init(&localMutex, nil)
        pthread_cond_init(&localCond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&localMutex)
        pthread_cond_destroy(&localCond)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        engine.enqueue(UnownedJob(job), on: self)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    @inline(__always)
    func popJob() -> Job {
        let job = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count { queue.removeAll(keepingCapacity: true); queueHead = 0 }
        return job
    }

    func run(_ job: Job) {
        switch job {
        case .task(let j): j.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
        case .body(let body): body()
        }
    }

    /// SE-0424: whether the caller runs on this executor, for `assumeIsolated`
    /// inside a body job, where no task records its executor: its thread, or in
    /// the fiber backend its fiber, is this executor's. The Swift 6 runtime
    /// asks a custom executor this when it tracks no current executor; in its
    /// legacy checking mode (not the default) it would not, and a body job's
    /// `assumeIsolated` would trap. (Workloads call theirs directly and need
    /// no isolation; `WorkloadBodyTests` checks the mechanism.)
    public func checkIsolated() {
        precondition(SimExecutor.current === self, "not on \(name)'s executor")
    }
}

// MARK: - thread entry

extension SimExecutor {
    /// The executor whose thread (or fiber) is calling, or nil on a foreign thread.
    @inline(__always)
    public static var current: SimExecutor? {
        guard let raw = kvmsim_current_executor() else { return nil }
        return Unmanaged<SimExecutor>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Calls `body` with the current executor borrowed (no reference counting: the
    /// engine keeps every executor alive), or returns nil on a foreign thread.
    /// The scheduler's per-step paths use this rather than `current`, whose
    /// result is a strong copy.
    @inline(__always)
    static func withCurrent<R>(_ body: (SimExecutor) throws -> R) rethrows -> R? {
        guard let raw = kvmsim_current_executor() else { return nil }
        return try Unmanaged<SimExecutor>.fromOpaque(raw)._withUnsafeGuaranteedRef(body)
    }

    /// `current?.id`, without reference counting.
    @inline(__always)
    public static var currentID: Int? { withCurrent { $0.id } }

    /// Makes `executor` the calling context's executor (thread start, fiber switches).
    @inline(__always)
    static func setCurrent(_ executor: SimExecutor?) {
        kvmsim_set_current_executor(executor.map { Unmanaged.passUnretained($0).toOpaque() })
        kvmsim_set_access_gate(executor?.accessGate ?? 0)
    }

    func startThread() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, 4 << 20)
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, simExecutorThreadMain, box)
        pthread_attr_destroy(&attr)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
    }
}

private func simExecutorThreadMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let executor = Unmanaged<SimExecutor>.fromOpaque(arg!).takeRetainedValue()
    SimExecutor.setCurrent(executor)
    kvmsim_urcu_register_thread()
    executor.engine.threadLoop(executor)
    kvmsim_urcu_unregister_thread()
    SimExecutor.setCurrent(nil)
    return nil
}

/// Entry of an executor's fiber (deterministic mode, fiber backend).
func simExecutorFiberMain(_ arg: UnsafeMutableRawPointer?) {
    let executor = Unmanaged<SimExecutor>.fromOpaque(arg!).takeUnretainedValue()
    executor.engine.deterministicLoop(executor)
}
