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


/// Figures 6 and 7: time to the first violation, and the search for the change_pte race.
extension Bench {
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

    // MARK: 7. search

    /// The change_pte race (`kvm_set_pfn_dirty()` of a page change_pte
    /// replaced; docs/mechanisms/sync-mmu.md, race 3) in both SYNC_MMU scenarios'
    /// patched variant, over `seeds` seeds, each run bounded by `budget`
    /// seconds: deterministic mode with the defaults and at access-level points
    /// (which decides the default granularity), parallel mode, and
    /// parallel mode recording for a trace (as `--trace-out`), whose failures
    /// are then reproduced deterministically. With v6.13's mark-accessed
    /// order (`--mark-accessed v6.13`): under v4.11's, race 5 (the page
    /// marked accessed after its reference is dropped) comes first on most
    /// seeds since trace format 2, and the figure would time that instead.
    static func search(_ r: inout Report, seeds: Int, budget: Double, progress: (String) -> Void) throws(InputError) {
        func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.sorted()[xs.count / 2] }
        r.searchSeeds = seeds
        r.searchBudgetSeconds = budget
        for scenario in ["sync-mmu-race", "sync-mmu-stress"] {
            var det: [Double] = [], acc: [Double] = [], par: [Double] = [], rec: [Double] = [], repro: [Double] = []
            var detFound = 0, accFound = 0, parFound = 0, recFound = 0, reproduced = 0
            for seed in 1...seeds {
                var o = try RunOptions(scenario: scenario, variant: "patched", mode: .deterministic)
                try o.selection.set(knob: "mark-accessed", to: "v6.13")
                o.seed = UInt64(seed)
                o.seconds = budget
                let d = try Runner(o).run()
                if let t = d.secondsToFirstViolation { detFound += 1; det.append(t) } else { det.append(budget) }
                o.points = .accesses
                let a = try Runner(o).run()
                if let t = a.secondsToFirstViolation { accFound += 1; acc.append(t) } else { acc.append(budget) }

                var p = try RunOptions(scenario: scenario, variant: "patched", mode: .parallel)
                try p.selection.set(knob: "mark-accessed", to: "v6.13")
                p.seed = UInt64(seed)
                p.seconds = budget
                let q = try Runner(p).run()
                if let t = q.secondsToFirstViolation { parFound += 1; par.append(t) } else { par.append(budget) }

                p.recordTrace = true
                p.points = .accesses
                p.lengths = RunOptions.recordingLengths
                p.reproductionSeconds = budget
                let e = try Runner(p).run()
                if let t = e.secondsToFirstViolation {
                    recFound += 1; rec.append(t)
                    if e.reproduced == true { reproduced += 1; repro.append(e.reproductionSeconds ?? 0) }
                } else { rec.append(budget) }
                progress("  \(scenario) seed \(seed): deterministic \(d.secondsToFirstViolation.map { String(format: "%.2f s", $0) } ?? "not found"), at accesses \(a.secondsToFirstViolation.map { String(format: "%.2f s", $0) } ?? "not found"), parallel \(q.secondsToFirstViolation.map { String(format: "%.2f s", $0) } ?? "not found"), recorded \(e.secondsToFirstViolation.map { String(format: "%.2f s", $0) } ?? "not found")\(e.reproduced.map { $0 ? ", reproduced" : ", not reproduced" } ?? "")")
            }
            r.searchDeterministicMedianSeconds[scenario] = median(det)
            r.searchDeterministicFound[scenario] = detFound
            r.searchAccessPointMedianSeconds[scenario] = median(acc)
            r.searchAccessPointFound[scenario] = accFound
            r.searchParallelMedianSeconds[scenario] = median(par)
            r.searchParallelFound[scenario] = parFound
            r.searchRecordedMedianSeconds[scenario] = median(rec)
            r.searchRecordedFound[scenario] = recFound
            r.searchReproduced[scenario] = reproduced
            r.searchReproductionRate[scenario] = recFound > 0 ? Double(reproduced) / Double(recFound) : 0
            r.searchReproductionMedianSeconds[scenario] = median(repro)
        }
    }
}
