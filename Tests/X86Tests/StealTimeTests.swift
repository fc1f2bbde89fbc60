// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import X86
import Harness
import TestSupport

/// CVE-2019-3016's verdicts, pinned.
@Suite struct StealTimeTests {
    func run(_ variant: String, mode: ExecutionMode = .deterministic, schedules: Int? = nil, seconds: Double? = nil,
             strategy: StrategyKind = .random) throws -> (RunReport, Runner) {
        try TestSupport.run("steal-time-flush", variant, mode: mode, schedules: schedules, seconds: seconds, strategy: strategy)
    }

    @Test func preFixLosesTheFlush() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, runner) = try run("pre-fix", schedules: 5000, strategy: strategy)
            #expect(r.firstViolation?.oracle == "stale-guest-tlb", "\(strategy)")
            let replay = try Runner.replay(try #require(runner.failingTrace))
            #expect(replay.events.contains { $0.text.contains("KVM_VCPU_FLUSH_TLB set, no IPI") })
        }
    }

    @Test func patchedHolds() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("patched", schedules: 3000, strategy: strategy)
            #expect(r.violations == 0, "\(strategy): \(r.firstViolation?.description ?? "")")
            #expect(r.unreachedMarks.isEmpty, "\(r.unreachedMarks)")
        }
        let (p, _) = try run("patched", mode: .parallel, seconds: 2)
        #expect(p.violations == 0)
    }

    @Test func signedMMUSeqHangs() throws {
        let (r, _) = try TestSupport.run("mmu-seq-wrap", "pre-fix", schedules: 1000)
        #expect(r.firstViolation?.oracle == "spurious-retry")
        let (p, _) = try TestSupport.run("mmu-seq-wrap", "patched", schedules: 1000)
        #expect(p.violations == 0)
    }
}
