// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CURCU

/// A serial (and task) executor backed by one long-lived pthread of its own.
///
/// Every host CPU actor and every vcpu actor gets one `SimExecutor`; an actor's
/// `unownedExecutor` returns it, and tasks are started on it with
/// `Task(executorPreference:)`. Owning the thread gives three things:
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

    // Deterministic-mode bookkeeping (engine mutex).
    enum State { case idle, ready, running, paused }
    var state: State = .idle
    var pausedPoint: StaticString = "start"
    var waitPredicate: (() -> Bool)?
    var cond = pthread_cond_t()

    // Jobs not yet started.
    var queue: [UnownedJob] = []
    var queueHead = 0
    var queueIsEmpty: Bool { queueHead == queue.count }

    // Parallel-mode queue lock.
    var localMutex = pthread_mutex_t()
    var localCond = pthread_cond_t()
    var shutdown = false
    var thread: pthread_t? = nil

    init(id: Int, name: String, engine: SimEngine) {
        self.id = id
        self.name = name
        self.engine = engine
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
    func popJob() -> UnownedJob {
        let job = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count { queue.removeAll(keepingCapacity: true); queueHead = 0 }
        return job
    }

    func run(_ job: UnownedJob) {
        job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
    }
}

// MARK: - thread entry

private let currentExecutorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

extension SimExecutor {
    /// The executor whose thread is calling, or nil on a foreign thread.
    @inline(__always)
    public static var current: SimExecutor? {
        guard let raw = pthread_getspecific(currentExecutorKey) else { return nil }
        return Unmanaged<SimExecutor>.fromOpaque(raw).takeUnretainedValue()
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
    pthread_setspecific(currentExecutorKey, Unmanaged.passUnretained(executor).toOpaque())
    kvmsim_urcu_register_thread()
    executor.engine.threadLoop(executor)
    kvmsim_urcu_unregister_thread()
    pthread_setspecific(currentExecutorKey, nil)
    return nil
}
