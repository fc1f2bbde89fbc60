// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import X86
import Harness
import TestSupport

/// CVE-2019-3016's verdicts, and its fix's fix (T7), pinned.
@Suite struct StealTimeTests {
    func run(_ variant: String, mode: ExecutionMode = .deterministic, schedules: Int? = nil, seconds: Double? = nil,
             strategy: StrategyKind = .random, hostEvents: Bool = true) throws -> (RunReport, Runner) {
        try TestSupport.run("steal-time-flush", variant, mode: mode, schedules: schedules, seconds: seconds, strategy: strategy) {
            if !hostEvents { $0.sizes.hostEventSources = 0 }
        }
    }

    @Test func preFixLosesTheFlush() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, runner) = try run("pre-fix", schedules: 5000, strategy: strategy)
            #expect(r.firstViolation?.oracle == "stale-guest-tlb", "\(strategy)")
            let replay = try Runner.replay(try #require(runner.failingTrace))
            #expect(replay.events.contains { $0.text.contains("KVM_VCPU_FLUSH_TLB set, no IPI") })
        }
    }

    /// The v5.6 fix holds while the host never remaps the steal-time page...
    @Test func patchedHoldsWhileTheHostKeepsThePage() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("patched", schedules: 3000, strategy: strategy, hostEvents: false)
            #expect(r.violations == 0, "\(strategy): \(r.firstViolation?.description ?? "")")
            #expect(r.unreachedMarks.isEmpty, "\(r.unreachedMarks)")
        }
        let (p, _) = try run("patched", mode: .parallel, seconds: 2, hostEvents: false)
        #expect(p.violations == 0)
    }

    /// ...but its gfn_to_pfn cache is not an MMU-notifier user (T7): once a
    /// write copies the page (after soft-dirty clearing, with the cache's pin
    /// making the page shared), KVM writes steal time into the old page.
    @Test func patchedWritesTheOldPageAfterARemap() throws {
        let (r, runner) = try run("patched", schedules: 20_000)
        #expect(r.firstViolation?.oracle == "stale-shared-area")
        let replay = try Runner.replay(try #require(runner.failingTrace))
        #expect(replay.events.contains { $0.text.contains("COW break") })
    }

    /// 7e2175ebd695 goes through the hva again: the page written is the one mapped now.
    @Test func hvaCacheHolds() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("hva-cache", schedules: 3000, strategy: strategy)
            #expect(r.violations == 0, "\(strategy): \(r.firstViolation?.description ?? "")")
        }
        let (p, _) = try run("hva-cache", mode: .parallel, seconds: 2)
        #expect(p.violations == 0, "\(p.firstViolation?.description ?? "")")
    }

    @Test func signedMMUSeqHangs() throws {
        let (r, _) = try TestSupport.run("mmu-seq-wrap", "pre-fix", schedules: 1000)
        #expect(r.firstViolation?.oracle == "spurious-retry")
        let (p, _) = try TestSupport.run("mmu-seq-wrap", "patched", schedules: 1000)
        #expect(p.violations == 0)
    }
}
