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

/// `kvmsim bench`: every figure measured in one run, each beside its baseline.
/// Timings are wall-clock on whatever machine runs it: print them, never gate on them.
public enum Bench {
    public struct Report: Codable, Sendable {
        public var machine: [String: String] = [:]
        // 1. RCU vs. rwlock: one reader per CPU (`readers`), and one reader alone
        public var rcuVsRwlockRatio = 0.0
        public var readers = 0
        public var rcuWalksPerSecond = 0.0
        public var rwlockWalksPerSecond = 0.0
        public var writerUpdatesPerSecondRCU = 0.0
        public var writerUpdatesPerSecondRwlock = 0.0
        public var writerTargetUpdatesPerSecond = 0.0
        public var rcuVsRwlockRatioOneReader = 0.0
        public var rcuWalksPerSecondOneReader = 0.0
        public var rwlockWalksPerSecondOneReader = 0.0
        // 2. Swift vs. C
        public var rcuVsCRatio = 0.0
        public var swiftWalksPerSecond = 0.0
        public var cWalksPerSecond = 0.0
        // 3. scheduling
        public var schedulesPerSecond = 0.0
        public var bareSchedulesPerSecond = 0.0
        /// The same schedules with the thread-per-executor backend (the baseline of the fiber backend).
        public var threadBackendSchedulesPerSecond = 0.0
        /// The deterministic backend `schedulesPerSecond` used.
        public var deterministicBackend = ""
        public var modelOverhead = 0.0
        public var stepsPerSchedule = 0.0
        // 4. parallel accesses
        public var accessesPerSecond = 0.0
        public var accessesPerSecondOneThread = 0.0
        public var parallelScaling = 0.0
        // 5. memory
        public var bytesPerMappedPage = 0.0
        public var bytesPerMappedPageLiveTables = 0.0
        public var peakMemorySparse64GiBBytes = 0
        public var sparse64GiBTableBytes = 0
        // 6. time to first violation, median seconds over seeds, per scenario's pre-fix variant
        public var timeToFirstViolation: [String: Double] = [:]
        public var timeToFirstViolationSeeds = 0
    }

    /// The figures `kvmsim bench` measures; `--only` picks some.
    public enum Figure: String, CaseIterable, Sendable {
        case rcuVsRwlock = "rcu-vs-rwlock", rcuVsC = "rcu-vs-c", schedules, accesses, memory
        case timeToFirstViolation = "time-to-first-violation"

        /// The report's keys this figure fills (the others stay out of its JSON).
        public var keys: [String] {
            switch self {
            case .rcuVsRwlock: ["rcuVsRwlockRatio", "readers", "rcuWalksPerSecond", "rwlockWalksPerSecond", "writerUpdatesPerSecondRCU",
                                "writerUpdatesPerSecondRwlock", "writerTargetUpdatesPerSecond", "rcuVsRwlockRatioOneReader",
                                "rcuWalksPerSecondOneReader", "rwlockWalksPerSecondOneReader"]
            case .rcuVsC: ["rcuVsCRatio", "swiftWalksPerSecond", "cWalksPerSecond"]
            case .schedules: ["schedulesPerSecond", "bareSchedulesPerSecond", "threadBackendSchedulesPerSecond", "deterministicBackend",
                              "modelOverhead", "stepsPerSchedule"]
            case .accesses: ["accessesPerSecond", "accessesPerSecondOneThread", "parallelScaling"]
            case .memory: ["bytesPerMappedPage", "bytesPerMappedPageLiveTables", "peakMemorySparse64GiBBytes", "sparse64GiBTableBytes"]
            case .timeToFirstViolation: ["timeToFirstViolation", "timeToFirstViolationSeeds"]
            }
        }
    }

    public struct Options: Sendable {
        public var quick = false
        /// What to measure (all by default).
        public var figures = Set(Figure.allCases)
        public init() {}
        var seconds: Double { quick ? 0.3 : 1.0 }
        var seeds: Int { quick ? 5 : 20 }
        var schedules: Int { quick ? 600 : 30_000 }
    }

    public static func run(_ o: Options, progress: (String) -> Void = { _ in }) throws(InputError) -> Report {
        var r = Report()
        r.machine = ["cpus": String(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "swift": "6.3.1"]
        let f = o.figures
        if f.contains(.rcuVsRwlock) {
            progress("RCU vs. rwlock page-table walks")
            rcuVsRwlock(&r, seconds: o.seconds)
        }
        if f.contains(.rcuVsC) {
            progress("Swift vs. C walks")
            swiftVsC(&r, seconds: o.seconds)
        }
        if f.contains(.schedules) {
            progress("deterministic schedules")
            try schedules(&r, count: o.schedules)
        }
        if f.contains(.accesses) {
            progress("parallel accesses")
            try accesses(&r, seconds: o.seconds * 2)
        }
        if f.contains(.memory) {
            progress("memory")
            memory(&r)
        }
        if f.contains(.timeToFirstViolation) {
            progress("time to first violation")
            try timeToFirstViolation(&r, seeds: o.seeds, progress: progress)
        }
        return r
    }

    /// The report as one JSON object with the keys of `figures` (and `machine`).
    public static func json(_ r: Report, figures: Set<Figure>) -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let full = try! enc.encode(r)
        guard figures.count < Figure.allCases.count,
              var object = (try? JSONSerialization.jsonObject(with: full)) as? [String: Any] else { return full }
        let keep = Set(figures.flatMap(\.keys) + ["machine"])
        object = object.filter { keep.contains($0.key) }
        return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

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

    // MARK: 1. RCU vs. rwlock

    /// Readers walking random pages for `seconds` while one writer updates a random
    /// PTE, 500,000 times a second, under `mmu_lock` for RCU or under the write lock
    /// for the rwlock. Same table, same walk code (`lookupLocklessSlot`), same
    /// writer schedule. The writer works in bursts every 100 us (each update its own
    /// critical section, as `kvm_unmap_hva_range()` takes `mmu_lock` per notifier
    /// call) and sleeps between them, so that it does not take a CPU from the
    /// readers. Measured with one reader per CPU (the headline ratio: what the
    /// machine's readers get) and with a single reader.
    static func rcuVsRwlock(_ r: inout Report, seconds: Double) {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        let rcu = LibURCU(engine: engine)
        let pages = 1 << 16
        let table = denseTable(pages: pages, engine: engine, rcu: rcu)
        let order = randomPages(1 << 16, below: pages)
        let writerPeriod = 2e-6, burstPeriod = 100e-6
        r.writerTargetUpdatesPerSecond = 1 / writerPeriod

        func measure(useRCU: Bool, readers: Int) -> (walks: Double, updates: Double) {
            // Writer-preferring, as the kernel's qrwlock (readers in process context
            // wait while a writer waits): glibc's default prefers readers, and with a
            // reader per CPU its writer starves (40,000 of 500,000 updates/s).
            var attr = pthread_rwlockattr_t()
            pthread_rwlockattr_init(&attr)
            pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
            var rw = pthread_rwlock_t()
            pthread_rwlock_init(&rw, &attr)
            pthread_rwlockattr_destroy(&attr)
            let mmuLock = Locked(())
            let stop = AtomicWords(count: 2)
            let walksDone = AtomicWords(count: 8 * readers)          // one cache line per reader
            defer { stop.free(); walksDone.free(); pthread_rwlock_destroy(&rw) }
            let rwPtr = withUnsafeMutablePointer(to: &rw) { $0 }
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
                        let g = rng.below(pages)
                        if useRCU {
                            mmuLock.withLock { _ in if let s = table.walk(g, cache: nil) { table.set(slot: s, PTE(pfn: g + 1, flags: PTE.present | PTE.read)) } }
                        } else {
                            pthread_rwlock_wrlock(rwPtr)
                            if let s = table.walk(g, cache: nil) { table.set(slot: s, PTE(pfn: g + 1, flags: PTE.present | PTE.read)) }
                            pthread_rwlock_unlock(rwPtr)
                        }
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
                            let p = Int(order[n & (order.count - 1)])
                            if useRCU {
                                rcu.readLock()
                                sum &+= table.lookupLocklessSlot(p, point: "bench").pte.raw
                                rcu.readUnlock()
                            } else {
                                pthread_rwlock_rdlock(rwPtr)
                                sum &+= table.lookupLocklessSlot(p, point: "bench").pte.raw
                                pthread_rwlock_unlock(rwPtr)
                            }
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
        let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        r.readers = cpus
        let a = measure(useRCU: true, readers: cpus)
        let b = measure(useRCU: false, readers: cpus)
        r.rcuWalksPerSecond = a.walks
        r.writerUpdatesPerSecondRCU = a.updates
        r.rwlockWalksPerSecond = b.walks
        r.writerUpdatesPerSecondRwlock = b.updates
        r.rcuVsRwlockRatio = b.walks > 0 ? a.walks / b.walks : 0
        let a1 = measure(useRCU: true, readers: 1)
        let b1 = measure(useRCU: false, readers: 1)
        r.rcuWalksPerSecondOneReader = a1.walks
        r.rwlockWalksPerSecondOneReader = b1.walks
        r.rcuVsRwlockRatioOneReader = b1.walks > 0 ? a1.walks / b1.walks : 0
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

    // MARK: 3. schedules

    /// sync-mmu-race (patched) in deterministic mode, and a bare world with the
    /// same actors, each passing the same number of scheduling points per
    /// schedule and doing nothing else. Model and bare world take turns, three
    /// rounds of `count / 3` schedules each, and each figure is its best round:
    /// a schedule takes 10-30 us, so one short run is at the mercy of whatever
    /// else the machine does, and interference only ever slows a round down.
    static func schedules(_ r: inout Report, count: Int) throws(InputError) {
        var o = try RunOptions(scenario: "sync-mmu-race", variant: "patched", mode: .deterministic)
        let rounds = 3, perRound = max(1, count / rounds)
        o.schedules = perRound
        o.lengths = [1]                                     // the scenario's own schedules, as the bare world's
        let names = o.selection.actorNames
        let engine = SimEngine(mode: .deterministic, actorNames: names, backend: o.backend)
        defer { engine.shutdown() }
        r.deterministicBackend = engine.backend.rawValue
        let strategy = RandomStrategy()
        var model = 0.0, bare = 0.0
        for _ in 0..<rounds {
            let rep = try Runner(o).run()
            model = max(model, Double(rep.schedules) / rep.elapsedSeconds)
            r.stepsPerSchedule = Double(rep.steps) / Double(max(1, rep.schedules))
            let perActor = max(1, Int(r.stepsPerSchedule.rounded()) / names.count)
            let start = now()
            for i in 0..<perRound {
                engine.beginSchedule(strategy: strategy, scheduleSeed: UInt64(i))
                for e in engine.executors {
                    engine.spawn(on: e) { for _ in 0..<perActor { engine.point("bare") } }
                }
                engine.runSchedule()
            }
            bare = max(bare, Double(perRound) / (now() - start))
        }
        r.schedulesPerSecond = model
        r.bareSchedulesPerSecond = bare
        r.modelOverhead = model > 0 ? bare / model : 0
        var threads = o
        threads.backend = .threads
        threads.schedules = max(1, min(count / 10, 2000))
        let threadRep = try Runner(threads).run()
        r.threadBackendSchedulesPerSecond = Double(threadRep.schedules) / threadRep.elapsedSeconds
    }

    // MARK: 4. accesses

    /// Guest accesses per second on real threads: sync-mmu-race's world (the
    /// no-change-pte form), no host event source, 2 vcpus on 2 CPUs vs. 1 on 1.
    static func accesses(_ r: inout Report, seconds: Double) throws(InputError) {
        func run(vcpus: Int) throws(InputError) -> Double {
            let scenario = SyncMMURaceScenario()
            var c = scenario.defaultConfig(mode: .parallel)
            c.cpus = vcpus; c.vcpus = vcpus; c.hostEventSources = 0; c.pages = 64; c.tableBits = 9
            var o = RunOptions(ScenarioSelection(scenario, variant: .noChangePTE, config: c), mode: .parallel)
            o.seconds = seconds
            let rep = try Runner(o).run()
            return Double(rep.schedules) / rep.elapsedSeconds
        }
        r.accessesPerSecond = try run(vcpus: 2)
        r.accessesPerSecondOneThread = try run(vcpus: 1)
        r.parallelScaling = r.accessesPerSecondOneThread > 0 ? r.accessesPerSecond / r.accessesPerSecondOneThread : 0
    }

    // MARK: 5. memory

    static func rssBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }

    /// Bytes of GPA table per mapped page for a densely mapped 1 GiB guest, and
    /// the memory a sparse 64 GiB guest (one page mapped per 2 MiB) costs.
    static func memory(_ r: inout Report) {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        let rcu = LibURCU(engine: engine)
        let dense = 1 << 18
        let t = denseTable(pages: dense, engine: engine, rcu: rcu)
        r.bytesPerMappedPage = Double(t.allocatedBytes) / Double(dense)
        r.bytesPerMappedPageLiveTables = Double(t.liveTables * t.entriesPerTable * 8) / Double(dense)
        let before = rssBytes()
        let limit = 64 << 18                                    // 64 GiB of 4 KiB pages
        let cap = PageTable.capacity(forPageLimit: limit, levels: 3, bitsPerLevel: 9)
        let sparse = PageTable(name: "sparse", levels: 3, bitsPerLevel: 9, capacity: cap, engine: engine, rcu: rcu)
        let cache = MMUMemoryCache(table: sparse)
        for g in stride(from: 0, to: limit, by: 512) {
            _ = cache.topup(min: 2, max: 4)
            if let s = sparse.walk(g, cache: cache) { sparse.set(slot: s, PTE(pfn: 1, flags: PTE.present)) }
        }
        cache.freeAll()
        r.peakMemorySparse64GiBBytes = max(0, rssBytes() - before)
        r.sparse64GiBTableBytes = sparse.allocatedBytes
    }

    // MARK: 6. time to first violation

    static func timeToFirstViolation(_ r: inout Report, seeds: Int, progress: (String) -> Void) throws(InputError) {
        r.timeToFirstViolationSeeds = seeds
        for s in ScenarioRegistry.all where s.variants.contains("pre-fix") {
            var times: [Double] = []
            for seed in 1...seeds {
                var o = try RunOptions(scenario: s.name, variant: "pre-fix", mode: .deterministic)
                o.seed = UInt64(seed)
                o.schedules = 100_000
                let rep = try Runner(o).run()
                times.append(rep.secondsToFirstViolation ?? rep.elapsedSeconds)
            }
            times.sort()
            r.timeToFirstViolation[s.name] = times[times.count / 2]
            progress("  \(s.name) pre-fix: median \(String(format: "%.3f", times[times.count / 2])) s")
        }
    }

    /// The human table (the lines of `figures`).
    public static func table(_ r: Report, figures: Set<Figure> = Set(Figure.allCases)) -> String {
        func f(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : String(format: "%.3f", x) }
        var l: [String] = []
        if figures.contains(.rcuVsRwlock) {
            l.append("1. RCU vs. rwlock walks (\(r.readers) readers, one per CPU; 1 writer at \(f(r.writerTargetUpdatesPerSecond)) updates/s target, in bursts every 100 us)")
            l.append("   RCU \(f(r.rcuWalksPerSecond)) walks/s (writer \(f(r.writerUpdatesPerSecondRCU))/s), rwlock \(f(r.rwlockWalksPerSecond)) walks/s (writer \(f(r.writerUpdatesPerSecondRwlock))/s): ratio \(f(r.rcuVsRwlockRatio)) (target >= 5)")
            l.append("   one reader: RCU \(f(r.rcuWalksPerSecondOneReader)) walks/s, rwlock \(f(r.rwlockWalksPerSecondOneReader)) walks/s: ratio \(f(r.rcuVsRwlockRatioOneReader))")
        }
        if figures.contains(.rcuVsC) {
            l.append("2. Swift RCU walk \(f(r.swiftWalksPerSecond))/s vs. C \(f(r.cWalksPerSecond))/s: ratio \(f(r.rcuVsCRatio)) (target >= 0.5)")
        }
        if figures.contains(.schedules) {
            l.append("3. sync-mmu-race \(f(r.schedulesPerSecond)) schedules/s (\(f(r.stepsPerSchedule)) steps each, \(r.deterministicBackend)), bare \(f(r.bareSchedulesPerSecond))/s: overhead \(f(r.modelOverhead)) (targets >= 20000, <= 3); thread backend \(f(r.threadBackendSchedulesPerSecond))/s")
        }
        if figures.contains(.accesses) {
            l.append("4. guest accesses, parallel: \(f(r.accessesPerSecond))/s on 2 threads, \(f(r.accessesPerSecondOneThread))/s on 1: scaling \(f(r.parallelScaling))")
        }
        if figures.contains(.memory) {
            l.append("5. GPA table: \(f(r.bytesPerMappedPage)) bytes per mapped page allocated (\(f(r.bytesPerMappedPageLiveTables)) in live tables; target <= 16); sparse 64 GiB guest: \(r.sparse64GiBTableBytes / 1_048_576) MiB table, RSS +\(r.peakMemorySparse64GiBBytes / 1_048_576) MiB")
        }
        if figures.contains(.timeToFirstViolation) {
            l.append("6. time to first violation, median of \(r.timeToFirstViolationSeeds) seeds (target <= 1 s):")
            for (k, v) in r.timeToFirstViolation.sorted(by: { $0.key < $1.key }) { l.append("   \(k) pre-fix: \(String(format: "%.3f", v)) s") }
        }
        return l.joined(separator: "\n")
    }
}
