"""Mutations: the arch-neutral KVM core (the generic MMU notifier of v5.13+, mmu_invalidate_*).

Each runs alone (every world runs this code); scenarios are those whose
worlds use the code mutated (x86 TDP MMU and arm64 stage-2 use ModernKVM;
the seed worlds use KVM+MMUNotifier, in mips_gpa.py)."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='modern-notifier-no-flush-on-ret', cls=0,
        kind='skip a flush (__kvm_handle_hva_range() ignores flush_on_ret)',
        file='Sources/KVMCore/KVM/KVMMMUNotifier.swift',
        edits=[
            ('        if range.flushOnRet && ret { arch.flushRemoteTLBs() }',
             '        if false && range.flushOnRet && ret { arch.flushRemoteTLBs() }'),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress', 'stage2-race', 'stage2-stress']),
    # Not kept: the same reorder in kvm_mmu_invalidate_end() (ModernKVM) is
    # equivalent: x86 and arm64 check mmu_invalidate_retry*() under mmu_lock,
    # which the end holds for write (measured: survived, 2026-12-07). Book3S
    # HV checks under a per-page rmap lock, so the old notifier's end is where
    # the order matters:
    Mutation(
        name='kvm-notifier-end-count-before-seq', cls=1,
        kind='reorder a flag and the count it guards (mmu_notifier_count dropped before mmu_notifier_seq++)',
        file='Sources/KVMCore/KVM/KVM+MMUNotifier.swift',
        edits=[
            ('        notifier.bumpSeq()\n        smp_wmb()\n        let left = notifier.dropCount()\n',
             '        let left = notifier.dropCount()\n        smp_wmb()\n        notifier.bumpSeq()\n'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress', 'sync-mmu-race', 'sync-mmu-stress']),
    Mutation(
        name='kvm-retry-gfn-range-end-short', cls=2,
        kind='range end off by one page (mmu_invalidate_retry_gfn() misses the last gfn of the range)',
        file='Sources/KVMCore/KVM/MMUInvalidateState.swift',
        edits=[
            ('            if gfn >= s && gfn < e { return true }', '            if gfn >= s && gfn + 1 < e { return true }'),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
    Mutation(
        name='kvm-invalidate-range-not-grown', cls=3,
        kind='lose a range (kvm_mmu_invalidate_range_add() keeps only the newest of concurrent invalidations)',
        file='Sources/KVMCore/KVM/MMUInvalidateState.swift',
        edits=[
            ('            words.store(0, .rangeStart, min(words.load(0, .rangeStart), gfns.lowerBound))\n'
             '            words.store(0, .rangeEnd, max(words.load(0, .rangeEnd), gfns.upperBound))\n',
             '            words.store(0, .rangeStart, gfns.lowerBound)\n'
             '            words.store(0, .rangeEnd, gfns.upperBound)\n'),
        ],
        scenarios=['tdp-mmu-race', 'tdp-mmu-stress']),
]
