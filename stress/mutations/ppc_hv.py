"""Mutations: PPC Book3S HV HPT and TLB invalidation (seed 002)."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='ppc-local-instead-of-global', cls=0, kind='skip a flush (tlbiel for tlbie)',
        file='Sources/PPC/HV/Book3SHV+Invalidation.swift',
        edits=[
            ('                global = true',
             '                global = false'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-no-entry-flush', cls=2, kind='skip a flush (need_tlb_flush)',
        file='Sources/PPC/HV/Book3SHV+Entry.swift',
        edits=[
            ('if clearNeedTLBFlush(pcpu) {',
             'if clearNeedTLBFlush(pcpu) && false {'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-unmap-no-tlbie', cls=0, kind='skip a flush (host unmap)',
        file='Sources/PPC/HV/Book3SHV+Notifier.swift',
        edits=[
            ('                kvmppcInvalidateHPTE(i)\n',
             '                hpt.setV(i, hpt.v(i) & ~HPT.valid)\n'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-h-enter-no-retry-check', cls=0, kind='skip a retry check',
        file='Sources/PPC/HV/Book3SHV+HCalls.swift',
        edits=[
            ('            rmap.lock(gfn)\n            if kvm.mmuNotifierRetry(mmuSeq) {',
             '            rmap.lock(gfn)\n            if false {'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-fault-no-retry-check', cls=0, kind='skip a retry check',
        file='Sources/PPC/HV/Book3SHV+Fault.swift',
        edits=[
            ('        rmap.lock(gfn)\n        if kvm.mmuNotifierRetry(mmuSeq) {',
             '        rmap.lock(gfn)\n        if false {'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-fault-seq-after-get-user-page', cls=1,
        kind='move a check across a scheduling point (mmu_seq read after get_user_pages)',
        file='Sources/PPC/HV/Book3SHV+Fault.swift',
        edits=[
            ('        let mmuSeq = kvm.mmuNotifierSeq\n        smp_rmb()\n        let writing = write && HPT.isWritable(grpte)\n'
             '        guard let (pfn, hostWritable) = kvm.hostMM.getUserPage(hva, write: writing) else { return }\n',
             '        let writing = write && HPT.isWritable(grpte)\n'
             '        guard let (pfn, hostWritable) = kvm.hostMM.getUserPage(hva, write: writing) else { return }\n'
             '        let mmuSeq = kvm.mmuNotifierSeq\n        smp_rmb()\n'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-h-enter-seq-after-pte-lookup', cls=1,
        kind='move a check across a scheduling point (H_ENTER reads mmu_seq after the Linux PTE)',
        file='Sources/PPC/HV/Book3SHV+HCalls.swift',
        edits=[
            ('        let mmuSeq = kvm.mmuNotifierSeq\n        smp_rmb()\n        guard pteIndex >= 0',
             '        guard pteIndex >= 0'),
            ('        let hostPTE = kvm.hostMM.pte(hva)\n        engine.point("h_enter:lookup_linux_pte")',
             '        let hostPTE = kvm.hostMM.pte(hva)\n        let mmuSeq = kvm.mmuNotifierSeq\n        smp_rmb()\n'
             '        engine.point("h_enter:lookup_linux_pte")'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-h-remove-revmap-before-tlbie', cls=3,
        kind='reorder an unlink and its flush (H_REMOVE drops the rmap entry before the tlbie)',
        file='Sources/PPC/HV/Book3SHV+HCalls.swift',
        edits=[
            ('            local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu)\n            removeRevmapChain(pteIndex)\n',
             '            removeRevmapChain(pteIndex)\n            local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu)\n'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-h-protect-no-invalidate', cls=0, kind='skip a flush (H_PROTECT)',
        file='Sources/PPC/HV/Book3SHV+HCalls.swift',
        edits=[
            ('        if v & HPT.valid != 0 { local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu) }\n        hpt.setR(pteIndex, r)',
             '        hpt.setR(pteIndex, r)'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-bulk-remove-one-vcpu-off-by-one', cls=2,
        kind='a configuration bound off by one (tlbiel for a two-vcpu guest)',
        file='Sources/PPC/HV/Book3SHV+HCalls.swift',
        edits=[
            ('            global = onlineVCPUs > 1\n', '            global = onlineVCPUs > 2\n'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
    Mutation(
        name='ppc-h-bulk-remove-revmap-before-tlbie', cls=3,
        kind='reorder an unlink and its flush (H_BULK_REMOVE drops the rmap entries before the tlbies)',
        file='Sources/PPC/HV/Book3SHV+HCalls.swift',
        edits=[
            ('            // Now that we\'ve collected a batch, do the tlbies.\n',
             '            for b in batch where b.wasValid { removeRevmapChain(b.slot) }\n'
             '            // Now that we\'ve collected a batch, do the tlbies.\n'),
            ('                if b.wasValid { removeRevmapChain(b.slot) }\n                hpt.unlock(b.slot, 0)\n',
             '                hpt.unlock(b.slot, 0)\n'),
        ],
        scenarios=['ppc-tlb-local', 'ppc-tlb-stress']),
]
