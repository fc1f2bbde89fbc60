// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
import RCU
import KVMCore
import Harness
import Catalog
import MIPS
import CURCU
import BenchC
#if canImport(Glibc)
import Glibc
#endif


/// Figures 1 and 2: page-table walks under RCU, under a pthread rwlock, and in C.
extension Bench {
    // MARK: - the page table under test

    /// A 3-level, 9-bit GPA table with `pages` pages mapped densely (gfn i -> pfn i+1).
    static func denseTable(pages: Int, engine: SimEngine, rcu: any RCUDomain) -> PageTable {
        let cap = PageTable.capacity(forPageLimit: pages, levels: 3, bitsPerLevel: 9)
        let t = PageTable(name: "bench GPA table", levels: 3, bitsPerLevel: 9, capacity: cap, engine: engine, rcu: rcu)
        let cache = MMUMemoryCache(table: t)
        for g in 0..<pages {
            _ = cache.topup(min: 2, max: 4)
            if let s = t.walk(g, cache: cache) { t.set(slot: s, PTE(pfn: g + 1, flags: PTE.present | PTE.read | PTE.young)) }
        }
        cache.freeAll()
        return t
    }

    static func randomPages(_ n: Int, below limit: Int) -> [UInt32] {
        var rng = SplitMix64(seed: 42)
        return (0..<n).map { _ in UInt32(rng.below(limit)) }
    }

    /// A thread with liburcu registration, joined by the caller.
    final class BenchThread: @unchecked Sendable {
        private var thread = pthread_t()
        private let body: () -> Void
        init(_ body: @escaping () -> Void) {
            self.body = body
            let box = Unmanaged.passRetained(self).toOpaque()
            pthread_create(&thread, nil, { arg in
                let me = Unmanaged<BenchThread>.fromOpaque(arg!).takeRetainedValue()
                kvmsim_urcu_register_thread()
                me.body()
                kvmsim_urcu_unregister_thread()
                return nil
            }, box)
        }
        func join() { pthread_join(thread, nil) }
    }

    static func now() -> Double { SimEngine.monotonicSeconds() }

    /// Sleeps until monotonic time `t` (the measuring thread must not take a CPU
    /// from the threads it measures: on 2 CPUs a spinning main thread halves them).
    static func sleepUntil(_ t: Double) {
        while case let left = t - now(), left > 0 { usleep(UInt32(min(left, 0.1) * 1e6)) }
    }

    // MARK: readers against a writer

    /// What the threads of a walk figure do: a reader's walk of page `p` with
    /// its locking, and the writer's update of page `g` with its own.
    protocol WalkWorkload {
        func walk(_ p: Int) -> UInt64
        func update(_ g: Int)
    }

    /// `readers` threads walking the pages of `order` for `seconds` while one
    /// writer updates a random page below `pages`, 500,000 times a second. The
    /// writer works in bursts every 100 us (each update its own critical section,
    /// as `kvm_unmap_hva_range()` takes `mmu_lock` per notifier call) and sleeps
    /// between them, so that it does not take a CPU from the readers. Returns
    /// the readers' walks and the writer's updates per second.
    static func readersAgainstWriter<W: WalkWorkload>(_ w: W, readers: Int, seconds: Double, pages: Int,
                                                      order: [UInt32]) -> (walks: Double, updates: Double) {
        let writerPeriod = 2e-6, burstPeriod = 100e-6
        let stop = AtomicWords(count: 2)
        let walksDone = AtomicWords(count: 8 * readers)          // one cache line per reader
        defer { stop.free(); walksDone.free() }
        var updates = 0
        let start = now()
        let writer = BenchThread {
            kvmsim_bench_set_timer_slack(1)                       // wake on time, not 50 us late
            var rng = SplitMix64(seed: 7)
            var due = now()
            while stop.load(0) == 0 {
                let t = now()
                while due <= t {                                   // every update due by now
                    due += writerPeriod
                    w.update(rng.below(pages))
                    updates += 1
                }
                var wake = timespec(tv_sec: Int(t + burstPeriod), tv_nsec: Int((t + burstPeriod).truncatingRemainder(dividingBy: 1) * 1e9))
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nil)
            }
        }
        let readerThreads = (0..<readers).map { i in
            BenchThread {
                var n = i * 7919, sum: UInt64 = 0
                let first = n
                while stop.load(0) == 0 {
                    for _ in 0..<64 {
                        sum &+= w.walk(Int(order[n & (order.count - 1)]))
                        n += 1
                    }
                }
                walksDone.store(8 * i, UInt64(n - first))
                stop.store(1, sum)
            }
        }
        sleepUntil(start + seconds)
        stop.store(0, 1)
        for t in readerThreads { t.join() }
        writer.join()
        let dt = now() - start
        let walks = (0..<readers).reduce(0) { $0 + Int(walksDone.load(8 * $1)) }
        return (Double(walks) / dt, Double(updates) / dt)
    }

    /// Walks and writer updates per second of a lock-free and a locked
    /// workload, each with one reader per CPU and then with one reader.
    struct SideBySide {
        var readers = 0
        var lockFree = (walks: 0.0, updates: 0.0), locked = (walks: 0.0, updates: 0.0)
        var lockFreeOneReader = 0.0, lockedOneReader = 0.0
        var ratio: Double { locked.walks > 0 ? lockFree.walks / locked.walks : 0 }
        var ratioOneReader: Double { lockedOneReader > 0 ? lockFreeOneReader / lockedOneReader : 0 }
    }

    /// `readersAgainstWriter` for `lockFree` and `locked`, one reader per CPU
    /// (the headline: what the machine's readers get), then one reader.
    static func sideBySide<A: WalkWorkload, B: WalkWorkload>(_ lockFree: A, _ locked: B, seconds: Double, pages: Int,
                                                             order: [UInt32]) -> SideBySide {
        var m = SideBySide()
        m.readers = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        m.lockFree = readersAgainstWriter(lockFree, readers: m.readers, seconds: seconds, pages: pages, order: order)
        m.locked = readersAgainstWriter(locked, readers: m.readers, seconds: seconds, pages: pages, order: order)
        m.lockFreeOneReader = readersAgainstWriter(lockFree, readers: 1, seconds: seconds, pages: pages, order: order).walks
        m.lockedOneReader = readersAgainstWriter(locked, readers: 1, seconds: seconds, pages: pages, order: order).walks
        return m
    }

    /// A pthread rwlock, writer-preferring as the kernel's qrwlock (readers in
    /// process context wait while a writer waits): glibc's default prefers
    /// readers, and with a reader per CPU its writer starves (40,000 of 500,000
    /// updates/s).
    final class PthreadRWLock: @unchecked Sendable {
        let rw = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        init() {
            var attr = pthread_rwlockattr_t()
            pthread_rwlockattr_init(&attr)
            pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
            pthread_rwlock_init(rw, &attr)
            pthread_rwlockattr_destroy(&attr)
        }
        deinit { pthread_rwlock_destroy(rw); rw.deallocate() }
    }

    // MARK: 1. RCU vs. rwlock

    /// The GPA table walk (`lookupLocklessSlot`) under RCU, the writer's PTE
    /// update under `mmu_lock`.
    struct GPAWalkUnderRCU: WalkWorkload {
        let table: PageTable, rcu: LibURCU, mmuLock: Locked<Void>
        func walk(_ p: Int) -> UInt64 {
            rcu.readLock()
            defer { rcu.readUnlock() }
            return table.lookupLocklessSlot(p, point: "bench").pte.raw
        }
        func update(_ g: Int) {
            mmuLock.withLock { _ in if let s = table.walk(g, cache: nil) { table.set(slot: s, PTE(pfn: g + 1, flags: PTE.present | PTE.read)) } }
        }
    }

    /// The same walk under a pthread rwlock held for read, the update under it held for write.
    struct GPAWalkUnderRwlock: WalkWorkload {
        let table: PageTable, lock: PthreadRWLock
        func walk(_ p: Int) -> UInt64 {
            pthread_rwlock_rdlock(lock.rw)
            defer { pthread_rwlock_unlock(lock.rw) }
            return table.lookupLocklessSlot(p, point: "bench").pte.raw
        }
        func update(_ g: Int) {
            pthread_rwlock_wrlock(lock.rw)
            if let s = table.walk(g, cache: nil) { table.set(slot: s, PTE(pfn: g + 1, flags: PTE.present | PTE.read)) }
            pthread_rwlock_unlock(lock.rw)
        }
    }

    /// Readers walking random pages of a 65,536-page GPA table against one
    /// writer (`sideBySide`): same table, same walk code, same writer
    /// schedule, under RCU and under a rwlock.
    static func rcuVsRwlock(_ r: inout Report, seconds: Double) {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        let rcu = LibURCU(engine: engine)
        let pages = 1 << 16
        let table = denseTable(pages: pages, engine: engine, rcu: rcu)
        let order = randomPages(1 << 16, below: pages)
        r.writerTargetUpdatesPerSecond = 500_000
        let m = sideBySide(GPAWalkUnderRCU(table: table, rcu: rcu, mmuLock: Locked(())),
                           GPAWalkUnderRwlock(table: table, lock: PthreadRWLock()), seconds: seconds, pages: pages, order: order)
        r.readers = m.readers
        r.rcuWalksPerSecond = m.lockFree.walks
        r.writerUpdatesPerSecondRCU = m.lockFree.updates
        r.rwlockWalksPerSecond = m.locked.walks
        r.writerUpdatesPerSecondRwlock = m.locked.updates
        r.rcuVsRwlockRatio = m.ratio
        r.rcuWalksPerSecondOneReader = m.lockFreeOneReader
        r.rwlockWalksPerSecondOneReader = m.lockedOneReader
        r.rcuVsRwlockRatioOneReader = m.ratioOneReader
    }

    // MARK: 2. Swift vs. C

    /// The Swift RCU walk and the C reference walk, one reader thread each, no
    /// writer, same table, same pages.
    static func swiftVsC(_ r: inout Report, seconds: Double) {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        let rcu: any RCUDomain = LibURCU(engine: engine)
        let pages = 1 << 16
        let table = denseTable(pages: pages, engine: engine, rcu: rcu)
        let order = randomPages(1 << 16, below: pages)
        var swiftWalks = 0.0, cWalks = 0.0
        do {
            let stop = AtomicWords(count: 2)
            defer { stop.free() }
            let start = now()
            let t = BenchThread {
                var sum: UInt64 = 0, n = 0                  // locals: no boxed, access-checked captures in the loop
                while stop.load(0) == 0 {
                    for _ in 0..<64 {
                        let p = Int(order[n & (order.count - 1)])
                        sum &+= rcu.read { table.lookupLocklessSlot(p, point: "bench").pte.raw }
                        n += 1
                    }
                }
                stop.store(1, UInt64(n))
                _ = sum
            }
            sleepUntil(start + seconds)
            stop.store(0, 1)
            t.join()
            swiftWalks = Double(stop.load(1)) / (now() - start)
        }
        do {
            let stop = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
            stop.initialize(to: 0)
            defer { stop.deallocate() }
            var done: UInt64 = 0
            let arena = table.arenaForBenchmarks
            let start = now()
            let t = BenchThread {
                order.withUnsafeBufferPointer { p in
                    _ = kvmsim_bench_c_walk(arena.words, arena.state, 3, 9, p.baseAddress, UInt64(p.count), stop, &done)
                }
            }
            sleepUntil(start + seconds)
            stop.pointee = 1                                 // read through a volatile pointer by the C loop
            t.join()
            cWalks = Double(done) / (now() - start)
        }
        r.swiftWalksPerSecond = swiftWalks
        r.cWalksPerSecond = cWalks
        r.rcuVsCRatio = cWalks > 0 ? swiftWalks / cWalks : 0
    }
}
