"""Mutations: MIPS GPA page tables and the generic MMU notifier (seed 004, sync-mmu-*)."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='mips-no-retry-check', cls=0, kind='skip a retry check',
        file='Sources/MIPS/GPA/MIPSMMU+Fault.swift',
        edits=[
            ('if variant != .noRetry && kvm.mmuNotifierRetry(mmuSeq) {',
             'if false && kvm.mmuNotifierRetry(mmuSeq) {'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress']),
    Mutation(
        name='kvm-no-flush-on-invalidate', cls=0, kind='skip a flush',
        file='Sources/KVMCore/KVM/KVM+MMUNotifier.swift',
        edits=[
            ('        let needFlush = arch.unmapHvaRange(range)\n        if needFlush { flushRemoteTLBs() }',
             '        let needFlush = arch.unmapHvaRange(range)\n        if false && needFlush { flushRemoteTLBs() }'),
            ('        let needFlush = arch.unmapHva(hva)\n        if needFlush { flushRemoteTLBs() }',
             '        let needFlush = arch.unmapHva(hva)\n        if false && needFlush { flushRemoteTLBs() }'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress', 'gva-flush'],
        survivor="equivalent: neither modelled architecture's kvm_unmap_hva_range() asks the generic code to flush (MIPS flushes itself, Book3S HV uses tlbie); mips-unmap-no-flush-shadow-all removes the flush that runs"),
    Mutation(
        name='mips-unmap-no-flush-shadow-all', cls=0, kind='skip a flush (MIPS unmap)',
        file='Sources/MIPS/GPA/MIPSMMU+Notifier.swift',
        edits=[
            ('        engine.point(point)\n        flushShadowAll()\n', '        engine.point(point)\n'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress', 'gva-flush']),
    Mutation(
        name='kvm-seq-not-bumped', cls=0, kind='set a flag late (never)',
        file='Sources/KVMCore/KVM/KVM+MMUNotifier.swift',
        edits=[
            ('        notifier.bumpSeq()\n        smp_wmb()\n        let left',
             '        smp_wmb()\n        let left'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress']),
    Mutation(
        name='rcu-free-without-grace-period', cls=0, kind='free without a grace period',
        file='Sources/KVMCore/Tables/PageTable.swift',
        edits=[
            # The default (false) is dead since MIPSMMU sets it from --gpa-table-free:
            # drop the call_rcu() itself.
            ('            rcu.callRCU { [self] in reclaim(t) }\n', '            reclaim(t)\n'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress', 'gva-flush']),
    Mutation(
        name='mips-map-page-drop-rmb', cls=0, kind='drop a barrier',
        file='Sources/MIPS/GPA/MIPSMMU+Fault.swift',
        edits=[
            ('            let mmuSeq = mmuSeqType.snapshot(seqNow)\n            smp_rmb()',
             '            let mmuSeq = mmuSeqType.snapshot(seqNow)'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress'],
        survivor="equivalent in v4.11 even on weak memory (and loads stay in order in kvmsim's pso model anyway): gfn_to_pfn_prot() never takes the lockless gup there (hva_to_pfn_fast() returns false unless atomic or async), and get_user_pages() reads the PTE under the page-table lock, whose release orders the mmu_notifier_seq load before the zapper's PTE clear and so before its seq increment; the smp_rmb() guards a lockless gup"),
    Mutation(
        name='mips-seq-snapshot-after-gfn-to-pfn', cls=1,
        kind='move a check across a scheduling point (mmu_notifier_seq read after gfn_to_pfn_prot, the classic seed-004 order)',
        file='Sources/MIPS/GPA/MIPSMMU+Fault.swift',
        edits=[
            ('            let seqNow = kvm.mmuNotifierSeq\n            let mmuSeq = mmuSeqType.snapshot(seqNow)\n            smp_rmb()\n'
             '            engine.event("vcpu\\(vcpu.id): map_page slow path: gfn \\(gfn), mmu_notifier_seq snapshot \\(mmuSeq)")\n', ''),
            ('            let writeable = got.writable\n',
             '            let writeable = got.writable\n            let seqNow = kvm.mmuNotifierSeq\n'
             '            let mmuSeq = mmuSeqType.snapshot(seqNow)\n            smp_rmb()\n'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress']),
    Mutation(
        name='mips-v613-accessed-after-release', cls=3,
        kind='use after a reference is dropped (kvm_set_pfn_accessed() after kvm_release_pfn_clean() in the v6.13 order)',
        file='Sources/MIPS/GPA/MIPSMMU+Fault.swift',
        edits=[
            ('                kvm.kvmSetPfnAccessed(got.pfn)\n                kvm.releasePfnClean(got.pfn)\n                mmuLock.unlock()\n',
             '                kvm.releasePfnClean(got.pfn)\n                kvm.kvmSetPfnAccessed(got.pfn)\n                mmuLock.unlock()\n'),
        ],
        scenarios=['sync-mmu-race', 'sync-mmu-stress'],
        survivor="equivalent under the notifier protocol: the swap is still under kvm->mmu_lock after a passing mmu_notifier_retry(), and every host path that frees a mapped page first calls a notifier that takes mmu_lock (v4.11 try_to_unmap_one(): ->invalidate_page before the page is freed), so the page cannot be freed between the release and the marking; 13d66fddaaa4's own argument. 606,488 random, 515,261 PCT, 222,362 access-level schedules and 20 s on real threads saw nothing (2026-12-07)"),
]
