// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The thread backend of deterministic mode: every executor has a pthread, and
/// the baton passes through pthread condition variables (the engine's `mutex`
/// guards the scheduler's state). Also how executor threads end, in both modes.
extension SimEngine {
    /// An executor thread's deterministic loop: `deterministicLoop` with the
    /// scheduler's mutex held except while a job runs.
    func threadDeterministicLoop(_ me: SimExecutor) {
        pthread_mutex_lock(&mutex)
        deterministicLoop(me)
        pthread_mutex_unlock(&mutex)
    }

    /// Tells every executor thread to leave its loop and joins them.
    func shutdownThreads() {
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
}
