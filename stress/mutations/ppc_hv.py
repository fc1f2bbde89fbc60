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
]
