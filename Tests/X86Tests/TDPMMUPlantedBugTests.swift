// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import Harness
import Catalog
import X86
import TestSupport

/// Issue 20, class 1: a check moved across a step the kernel can be preempted
/// in, where the model has no named point. The suite's PCT case at every
/// kernel-memory access must catch it; stress/mutate plants the same bug
/// textually (tdp-seq-after-faultin) and measures the whole suite against it.
/// Without the planted bug the same configuration is the suite's clean case.
@Suite struct TDPMMUPlantedBugTests {
    /// The suite's case `tdp-mmu-race/upstream strategy=pct lengths=1,2,4,8
    /// points=accesses`, with kvm_faultin_pfn()'s mmu_invalidate_seq read
    /// moved after get_user_pages(): an invalidation that begins and ends
    /// inside the lookup goes unseen and the fault maps the old page (I1).
    @Test func aSeqSnapshotAfterThePfnLookupIsCaughtAtEveryAccess() throws {
        let (report, runner) = try run(TDPMMURaceScenario(), .upstream, schedules: 1_000, strategy: .pct,
                                       lengths: RunOptions.searchLengths, points: .accesses) {
            $0.options.plantedBug = .mmuSeqAfterPfnLookup
        }
        #expect(report.violations > 0)
        // The failing schedule replays from its trace (the config records the planted bug).
        let trace = try #require(runner.failingTrace)
        #expect(try Runner.replay(trace).violations.first?.oracle == report.firstViolation?.oracle)
    }

    /// Issue 20, class 5 (harm without a witness): handle_changed_spte()
    /// skips kvm_set_pfn_dirty() for the dirty leaves it zaps, as the mutation
    /// tdp-set-pfn-dirty-dropped does textually. With the host's page dirty
    /// state (`--page-dirty 1`, the default) the suite's case
    /// `tdp-mmu-race/upstream lengths=1,2,4,8` catches it: a page swapped back
    /// in by a read is mapped writable and clean (v6.11's do_swap_page()),
    /// the guest writes it through the EPT, the zap forgets the Dirty bit, and
    /// reclaim drops the page as clean (lost-dirty-page; schedules 16-336 for
    /// seeds 1-5, measured with the mutant). Without it the same bug runs
    /// clean: nothing in that host mm reads the page dirty state.
    @Test func aDirtyBitHandleChangedSPTEDropsIsALostDirtyPage() throws {
        let (report, runner) = try run(TDPMMURaceScenario(), .upstream, schedules: 2_000, lengths: RunOptions.searchLengths) {
            $0.options.plantedBug = .setPfnDirtyDropped
        }
        #expect(report.firstViolation?.oracle == "lost-dirty-page", "\(report.firstViolation?.description ?? "clean")")
        let trace = try #require(runner.failingTrace)
        #expect(try Runner.replay(trace).violations.first?.oracle == "lost-dirty-page")

        let (blind, _) = try run(TDPMMURaceScenario(), .upstream, schedules: 2_000, lengths: RunOptions.searchLengths) {
            $0.options.plantedBug = .setPfnDirtyDropped
            $0.options.pageDirty = 0
        }
        #expect(blind.violations == 0, "without page dirty state: \(blind.firstViolation?.description ?? "")")
    }
}
