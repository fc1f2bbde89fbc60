// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CURCU

/// Parallel mode: every executor's thread runs its jobs for real, concurrently.
/// `point` does nothing, `waitUntil` spins; each executor's queue has its own
/// mutex (`localMutex`).
extension SimEngine {
    func parallelLoop(_ me: SimExecutor) {
        while true {
            pthread_mutex_lock(&me.localMutex)
            while me.queueIsEmpty && !me.shutdown { pthread_cond_wait(&me.localCond, &me.localMutex) }
            if me.shutdown && me.queueIsEmpty { pthread_mutex_unlock(&me.localMutex); break }
            let job = me.popJob()
            pthread_mutex_unlock(&me.localMutex)
            if recordPasses { me.passes.append((kvmsim_timestamp(), "job")) }
            me.run(job)
        }
    }

    /// Waits until every spawned task has finished.
    public func waitForTasks() {
        pthread_mutex_lock(&mutex)
        while activeTasks.load(ordering: .acquiring) != 0 {
            pthread_cond_wait(&mainCond, &mutex)
        }
        pthread_mutex_unlock(&mutex)
    }
}
