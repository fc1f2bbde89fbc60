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
        /// The same schedules at access-level points (`--points accesses`).
        public var accessPointSchedulesPerSecond = 0.0
        public var accessPointStepsPerSchedule = 0.0
        /// The same schedules with a fresh world each (no reset in place), and
        /// what one world costs: built and torn down, against reset in place.
        public var freshWorldSchedulesPerSecond = 0.0
        public var worldBuildMicroseconds = 0.0
        public var worldResetMicroseconds = 0.0
        /// The same for one tdp-mmu-race (upstream) world.
        public var tdpWorldBuildMicroseconds = 0.0
        public var tdpWorldResetMicroseconds = 0.0
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
        // 7. search: the change_pte race in the SYNC_MMU scenarios' patched
        // variant, per scenario; a seed that does not find it counts as the budget
        public var searchSeeds = 0
        public var searchBudgetSeconds = 0.0
        public var searchDeterministicMedianSeconds: [String: Double] = [:]
        public var searchDeterministicFound: [String: Int] = [:]
        /// Deterministic at access-level points (`--points accesses`), otherwise the defaults.
        public var searchAccessPointMedianSeconds: [String: Double] = [:]
        public var searchAccessPointFound: [String: Int] = [:]
        public var searchParallelMedianSeconds: [String: Double] = [:]
        public var searchParallelFound: [String: Int] = [:]
        /// Parallel with a trace asked for (episodes recorded at access-level
        /// points): found, and of those reproduced as a deterministic trace.
        public var searchRecordedMedianSeconds: [String: Double] = [:]
        public var searchRecordedFound: [String: Int] = [:]
        public var searchReproduced: [String: Int] = [:]
        public var searchReproductionRate: [String: Double] = [:]
        public var searchReproductionMedianSeconds: [String: Double] = [:]
        // 8. the TDP MMU's walk: lock-free under RCU vs. under mmu_lock held for read
        public var tdpWalkReaders = 0
        public var tdpWalkPages = 0
        public var tdpRCUWalksPerSecond = 0.0
        public var tdpReadLockWalksPerSecond = 0.0
        public var tdpRCUVsReadLockRatio = 0.0
        public var tdpWriterUpdatesPerSecondRCU = 0.0
        public var tdpWriterUpdatesPerSecondReadLock = 0.0
        public var tdpRCUWalksPerSecondOneReader = 0.0
        public var tdpReadLockWalksPerSecondOneReader = 0.0
        public var tdpRCUVsReadLockRatioOneReader = 0.0
        // 9. figure 3's schedules in instructions (callgrind): per schedule, the
        // difference of two runs over `instructionSchedules` more schedules
        public var instructionSchedules = 0
        public var modelInstructionsPerSchedule = 0.0
        public var bareInstructionsPerSchedule = 0.0
        public var modelOverheadInstructions = 0.0
        /// valgrind's simulated first-level instruction and data cache misses and
        /// mispredicted branches (conditional and indirect), per schedule.
        public var modelI1MissesPerSchedule = 0.0
        public var bareI1MissesPerSchedule = 0.0
        public var modelD1MissesPerSchedule = 0.0
        public var bareD1MissesPerSchedule = 0.0
        public var modelMispredictsPerSchedule = 0.0
        public var bareMispredictsPerSchedule = 0.0
    }

    /// The figures `kvmsim bench` measures; `--only` picks some.
    public enum Figure: String, CaseIterable, Sendable {
        case rcuVsRwlock = "rcu-vs-rwlock", rcuVsC = "rcu-vs-c", schedules, accesses, memory
        case timeToFirstViolation = "time-to-first-violation", search, tdpWalk = "tdp-walk"
        /// Needs valgrind and a minute or two: measured only when `--only` names it.
        case instructions

        /// The figures a run without `--only` measures: all but `instructions`.
        public static var byDefault: Set<Figure> { Set(allCases).subtracting([.instructions]) }

        /// The report's keys this figure fills (the others stay out of its JSON).
        public var keys: [String] {
            switch self {
            case .rcuVsRwlock: ["rcuVsRwlockRatio", "readers", "rcuWalksPerSecond", "rwlockWalksPerSecond", "writerUpdatesPerSecondRCU",
                                "writerUpdatesPerSecondRwlock", "writerTargetUpdatesPerSecond", "rcuVsRwlockRatioOneReader",
                                "rcuWalksPerSecondOneReader", "rwlockWalksPerSecondOneReader"]
            case .rcuVsC: ["rcuVsCRatio", "swiftWalksPerSecond", "cWalksPerSecond"]
            case .schedules: ["schedulesPerSecond", "bareSchedulesPerSecond", "threadBackendSchedulesPerSecond", "deterministicBackend",
                              "modelOverhead", "stepsPerSchedule", "accessPointSchedulesPerSecond", "accessPointStepsPerSchedule",
                              "freshWorldSchedulesPerSecond", "worldBuildMicroseconds", "worldResetMicroseconds",
                              "tdpWorldBuildMicroseconds", "tdpWorldResetMicroseconds"]
            case .accesses: ["accessesPerSecond", "accessesPerSecondOneThread", "parallelScaling"]
            case .memory: ["bytesPerMappedPage", "bytesPerMappedPageLiveTables", "peakMemorySparse64GiBBytes", "sparse64GiBTableBytes"]
            case .timeToFirstViolation: ["timeToFirstViolation", "timeToFirstViolationSeeds"]
            case .search: ["searchSeeds", "searchBudgetSeconds", "searchDeterministicMedianSeconds", "searchDeterministicFound",
                           "searchAccessPointMedianSeconds", "searchAccessPointFound",
                           "searchParallelMedianSeconds", "searchParallelFound", "searchRecordedMedianSeconds", "searchRecordedFound",
                           "searchReproduced", "searchReproductionRate", "searchReproductionMedianSeconds"]
            case .tdpWalk: ["tdpWalkReaders", "tdpWalkPages", "tdpRCUWalksPerSecond", "tdpReadLockWalksPerSecond", "tdpRCUVsReadLockRatio",
                            "tdpWriterUpdatesPerSecondRCU", "tdpWriterUpdatesPerSecondReadLock", "tdpRCUWalksPerSecondOneReader",
                            "tdpReadLockWalksPerSecondOneReader", "tdpRCUVsReadLockRatioOneReader"]
            case .instructions: ["instructionSchedules", "modelInstructionsPerSchedule", "bareInstructionsPerSchedule",
                                 "modelOverheadInstructions", "modelI1MissesPerSchedule", "bareI1MissesPerSchedule",
                                 "modelD1MissesPerSchedule", "bareD1MissesPerSchedule", "modelMispredictsPerSchedule",
                                 "bareMispredictsPerSchedule"]
            }
        }
    }

    public struct Options: Sendable {
        public var quick = false
        /// What to measure (`Figure.byDefault` unless `--only` says).
        public var figures = Figure.byDefault
        public init() {}
        var seconds: Double { quick ? 0.3 : 1.0 }
        var seeds: Int { quick ? 5 : 20 }
        var schedules: Int { quick ? 600 : 30_000 }
        var searchSeeds: Int { quick ? 1 : 10 }
        var searchSeconds: Double { quick ? 3 : 60 }
    }

    public static func run(_ o: Options, progress: (String) -> Void = { _ in }) throws(InputError) -> Report {
        var r = Report()
        r.machine = ["cpus": String(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "swift": "6.3.1"]
        let f = o.figures
        // Before anything is measured: a missing tool is one line, not a
        // minute of figures thrown away.
        let tools = f.contains(.instructions) ? try instructionTools() : nil
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
        if f.contains(.search) {
            progress("search: the change_pte race, deterministic vs. parallel")
            try search(&r, seeds: o.searchSeeds, budget: o.searchSeconds, progress: progress)
        }
        if f.contains(.tdpWalk) {
            progress("x86 TDP MMU walks: RCU vs. mmu_lock held for read")
            tdpWalk(&r, seconds: o.seconds)
        }
        if let tools {
            progress("instructions per schedule, model vs. bare, under valgrind (callgrind)")
            try instructions(&r, quick: o.quick, tools: tools)
        }
        return r
    }

    /// The report as one JSON object with the keys of `figures` (and `machine`).
    public static func json(_ r: Report, figures: Set<Figure>) -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let full = try! enc.encode(r)
        guard figures != Set(Figure.allCases),
              var object = (try? JSONSerialization.jsonObject(with: full)) as? [String: Any] else { return full }
        let keep = Set(figures.flatMap(\.keys) + ["machine"])
        object = object.filter { keep.contains($0.key) }
        return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// The human table (the lines of `figures`).
    public static func table(_ r: Report, figures: Set<Figure> = Figure.byDefault) -> String {
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
            l.append("3. sync-mmu-race \(f(r.schedulesPerSecond)) schedules/s (\(f(r.stepsPerSchedule)) steps each, \(r.deterministicBackend)), bare \(f(r.bareSchedulesPerSecond))/s: overhead \(f(r.modelOverhead)) (targets >= 100000, <= 1.5); thread backend \(f(r.threadBackendSchedulesPerSecond))/s")
            l.append("   at access-level points: \(f(r.accessPointSchedulesPerSecond)) schedules/s (\(f(r.accessPointStepsPerSchedule)) steps each)")
            l.append("   a fresh world per schedule: \(f(r.freshWorldSchedulesPerSecond)) schedules/s; a world built and torn down \(f(r.worldBuildMicroseconds)) us, reset in place \(f(r.worldResetMicroseconds)) us")
            l.append("   a tdp-mmu-race world: built and torn down \(f(r.tdpWorldBuildMicroseconds)) us, reset in place \(f(r.tdpWorldResetMicroseconds)) us")
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
        if figures.contains(.search) {
            l.append("7. search: the change_pte race in the patched variant, median seconds to the first violation over \(r.searchSeeds) seeds (\(f(r.searchBudgetSeconds)) s budget each; not found counts as the budget):")
            for k in r.searchDeterministicMedianSeconds.keys.sorted() {
                let found = r.searchRecordedFound[k] ?? 0
                l.append("   \(k): deterministic \(f(r.searchDeterministicMedianSeconds[k] ?? 0)) s (found \(r.searchDeterministicFound[k] ?? 0)/\(r.searchSeeds)), at accesses \(f(r.searchAccessPointMedianSeconds[k] ?? 0)) s (\(r.searchAccessPointFound[k] ?? 0)/\(r.searchSeeds)), parallel \(f(r.searchParallelMedianSeconds[k] ?? 0)) s (\(r.searchParallelFound[k] ?? 0)/\(r.searchSeeds)); recording \(f(r.searchRecordedMedianSeconds[k] ?? 0)) s (\(found)/\(r.searchSeeds)), reproduced \(r.searchReproduced[k] ?? 0)/\(found) (median \(f(r.searchReproductionMedianSeconds[k] ?? 0)) s)")
            }
        }
        if figures.contains(.tdpWalk) {
            l.append("8. x86 TDP MMU walk to a 4K leaf (\(r.tdpWalkPages) gfns, 4 levels of 512; \(r.tdpWalkReaders) readers, one per CPU; the writer ages gfns under mmu_lock held for write on figure 1's schedule)")
            l.append("   RCU \(f(r.tdpRCUWalksPerSecond)) walks/s (writer \(f(r.tdpWriterUpdatesPerSecondRCU))/s), mmu_lock for read \(f(r.tdpReadLockWalksPerSecond)) walks/s (writer \(f(r.tdpWriterUpdatesPerSecondReadLock))/s): ratio \(f(r.tdpRCUVsReadLockRatio))")
            l.append("   one reader: RCU \(f(r.tdpRCUWalksPerSecondOneReader)) walks/s, mmu_lock for read \(f(r.tdpReadLockWalksPerSecondOneReader)) walks/s: ratio \(f(r.tdpRCUVsReadLockRatioOneReader))")
        }
        if figures.contains(.instructions) {
            l.append("9. figure 3 in instructions per schedule (callgrind, the difference of two runs: \(r.instructionSchedules) schedules): model \(f(r.modelInstructionsPerSchedule)), bare \(f(r.bareInstructionsPerSchedule)): overhead \(f(r.modelOverheadInstructions))")
            l.append("   simulated per schedule, model vs. bare: I1 misses \(f(r.modelI1MissesPerSchedule)) vs. \(f(r.bareI1MissesPerSchedule)), D1 misses \(f(r.modelD1MissesPerSchedule)) vs. \(f(r.bareD1MissesPerSchedule)), mispredicted branches \(f(r.modelMispredictsPerSchedule)) vs. \(f(r.bareMispredictsPerSchedule))")
        }
        return l.joined(separator: "\n")
    }
}
