"""Mutations: x86: steal time and the TDP MMU."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='steal-time-nonatomic-clear', cls=0, kind='drop an atomic',
        file='Sources/X86/StealTime/StealTimeVM.swift',
        edits=[
            ('            let old = hostMM.pages.content.exchange(pfn, 0)',
             '            let old = hostMM.pages.content.load(pfn); engine.point("mutant"); hostMM.pages.content.store(pfn, 0)'),
        ],
        scenarios=['steal-time-flush']),
    Mutation(
        name='steal-time-record-no-flush', cls=0, kind='skip a flush (record_steal_time ignores KVM_VCPU_FLUSH_TLB)',
        file='Sources/X86/StealTime/StealTimeVM.swift',
        edits=[
            ('            let old = hostMM.pages.content.exchange(pfn, 0)                 // xchg(&st->preempted, 0)\n'
             '            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }\n',
             '            let old = hostMM.pages.content.exchange(pfn, 0)                 // xchg(&st->preempted, 0)\n'
             '            _ = old\n'),
        ],
        scenarios=['steal-time-flush']),
    Mutation(
        name='steal-time-guest-queue-plain-store', cls=0,
        kind='drop an atomic (the guest sets KVM_VCPU_FLUSH_TLB with a store, not a cmpxchg)',
        file='Sources/X86/StealTime/StealTimeVM.swift',
        edits=[
            ('withMappedPage(c, write: true, { hostMM.pages.content.cas($0, state, state | Self.flushBit) }) == true',
             'withMappedPage(c, write: true, { hostMM.pages.content.store($0, state | Self.flushBit); return true }) == true'),
        ],
        scenarios=['steal-time-flush']),
    Mutation(
        name='tdp-seq-after-faultin', cls=1,
        kind='move a check across a scheduling point (mmu_invalidate_seq read after the pfn lookup)',
        file='Sources/X86/TDPMMU/TDPMMU+Fault.swift',
        edits=[
            # The code form TDPPlantedBug.mmuSeqAfterPfnLookup selects (its test plants it in-process).
            ('        let late = code.faultinSeqSnapshot == .afterPfnLookup', '        let late = true'),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
    Mutation(
        name='tdp-zap-atomic-no-flush', cls=0, kind='skip a flush (tdp_mmu_zap_spte_atomic)',
        file='Sources/X86/TDPMMU/TDPMMU+SetSPTE.swift',
        edits=[
            ('        flushRemoteTLBs()                                 // kvm_flush_remote_tlbs_gfn()\n', ''),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
    Mutation(
        name='tdp-yield-without-flush', cls=0, kind='skip a flush (tdp_mmu_iter_cond_resched yields with a flush owed)',
        file='Sources/X86/TDPMMU/TDPMMU+SetSPTE.swift',
        edits=[
            ('        if flush { flushRemoteTLBs() }\n', ''),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
    Mutation(
        name='tdp-fast-pf-plain-store', cls=2,
        kind='drop an atomic (fast_pf_fix_direct_spte() stores instead of cmpxchg)',
        file='Sources/X86/TDPMMU/TDPMMU+Fault.swift',
        edits=[
            ('            if arena.words.cas(sptep, spte.raw, new.raw) {',
             '            arena.words.store(sptep, new.raw); if true {'),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
    Mutation(
        name='tdp-zap-leafs-range-end-short', cls=2, kind='range end off by one page (tdp_mmu_zap_leafs)',
        file='Sources/X86/TDPMMU/TDPMMU+Zap.swift',
        edits=[
            ('        let end = min(end, maxGfnExclusive)\n        kvm.mmuLock.assertHeldWrite("tdp_mmu_zap_leafs")',
             '        let end = min(end, maxGfnExclusive) - 1\n        kvm.mmuLock.assertHeldWrite("tdp_mmu_zap_leafs")'),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
    Mutation(
        name='tdp-set-pfn-dirty-dropped', cls=5,
        kind='lose a dirty bit (handle_changed_spte() skips kvm_set_pfn_dirty())',
        file='Sources/X86/TDPMMU/TDPMMU+SetSPTE.swift',
        edits=[
            ('        if wasLeaf && old.isDirty && (!isPresent || !new.isDirty || pfnChanged) {',
             '        if false && wasLeaf && old.isDirty && (!isPresent || !new.isDirty || pfnChanged) {'),
        ],
        # Was a survivor (class 5: no host page dirty state in the TDP worlds);
        # with --page-dirty 1 (the default) reclaim drops the page clean and
        # lost-dirty-page fires (TDPPlantedBug.setPfnDirtyDropped plants it in-process).
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
]
