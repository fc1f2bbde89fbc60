"""Mutations: MIPS trap-and-emulate ASIDs and GVA page tables (seeds 000, 001)."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='asid-reenter-zero-this-cpu-only', cls=2, kind="skip a flush (other CPUs' contexts)",
        file='Sources/MIPS/TrapEmul/TrapEmulVCPU+ASID.swift',
        edits=[
            ('for i in 0..<asids.cpus { guestUserMM.setCPUContext(i, 0) }',
             'guestUserMM.setCPUContext(cpu, 0)'),
        ],
        scenarios=['asid-lazy-regen', 'gva-flush']),
    Mutation(
        name='gva-flush-skip-useg', cls=2, kind='skip a flush (GVA useg)',
        file='Sources/MIPS/TrapEmul/GVAPageTables.swift',
        edits=[
            ('        } else {\n            flushGVAPgd(pgd, 0, 0x3FFF_FFFF)              // useg\n',
             '        } else {\n'),
        ],
        scenarios=['gva-flush']),
]

# Issue 20, class 2 (modelled state nobody exercises): the boundary pages of the
# ranges kvm_mips_flush_gva_pt() computes, and the guest kernel mm's per-CPU
# contexts, which only guest kernel-mode accesses translate through.
MUTATIONS += [
    Mutation(
        name='gva-flush-useg-end-one-page-short', cls=2, kind='range end off by one page (KMF_USER: useg to 0x3fffefff)',
        file='Sources/MIPS/TrapEmul/GVAPageTables.swift',
        edits=[
            ('            flushGVAPgd(pgd, 0, 0x3FFF_FFFF)              // useg\n            if flags.contains(.kern) {',
             '            flushGVAPgd(pgd, 0, 0x3FFF_EFFF)              // useg\n            if flags.contains(.kern) {'),
        ],
        scenarios=['gva-flush']),
    Mutation(
        name='gva-flush-kseg23-start-one-page-late', cls=2, kind='range start off by one page (KMF_KERN: kseg2/3 from 0x60001000)',
        file='Sources/MIPS/TrapEmul/GVAPageTables.swift',
        edits=[
            ('flushGVAPgd(pgd, 0x6000_0000, 0x7FFF_FFFF)   // kseg2/3',
             'flushGVAPgd(pgd, 0x6000_1000, 0x7FFF_FFFF)   // kseg2/3'),
        ],
        scenarios=['gva-flush']),
    Mutation(
        name='gva-flush-gpa-kern-end-one-page-short', cls=2, kind='range end off by one page (KMF_GPA|KMF_KERN: to 0x7fffefff)',
        file='Sources/MIPS/TrapEmul/GVAPageTables.swift',
        edits=[
            ('flushGVAPgd(pgd, 0, 0x7FFF_FFFF)          // useg, kseg0, seg2/3',
             'flushGVAPgd(pgd, 0, 0x7FFF_EFFF)          // useg, kseg0, seg2/3'),
        ],
        scenarios=['gva-flush']),
    Mutation(
        name='gva-flush-gpa-kern-skips-kseg0', cls=2, kind='skip a flush (KMF_GPA|KMF_KERN flushes as KMF_KERN: kseg0 left)',
        file='Sources/MIPS/TrapEmul/GVAPageTables.swift',
        edits=[
            ('flushGVAPgd(pgd, 0, 0x7FFF_FFFF)          // useg, kseg0, seg2/3',
             'flushGVAPgd(pgd, 0, 0x3FFF_FFFF); flushGVAPgd(pgd, 0x6000_0000, 0x7FFF_FFFF)   // useg, seg2/3'),
        ],
        scenarios=['gva-flush']),
    Mutation(
        name='entryhi-keeps-other-kernel-contexts', cls=2, kind="skip a flush (other CPUs' guest kernel mm contexts on a guest ASID change)",
        file='Sources/MIPS/TrapEmul/TrapEmulVCPU+ASID.swift',
        edits=[
            ('for i in 0..<asids.cpus where i != cpu { guestKernelMM.setCPUContext(i, 0) }', ''),
        ],
        scenarios=['asid-lazy-regen', 'gva-flush']),
    Mutation(
        name='tlb-flush-request-zeroes-user-contexts-only', cls=2, kind="skip a flush (KVM_REQ_TLB_FLUSH: guest kernel mm contexts kept)",
        file='Sources/MIPS/TrapEmul/TrapEmulVCPU+ASID.swift',
        edits=[
            ('{ guestKernelMM.setCPUContext(i, 0) }\n            guestUserMM.setCPUContext(i, 0)',
             '{ }\n            guestUserMM.setCPUContext(i, 0)'),
        ],
        scenarios=['gva-flush']),
    Mutation(
        name='reenter-no-stale-check-in-kernel-mode', cls=2, kind='skip a check (the guest kernel mm context not checked for staleness at re-entry)',
        file='Sources/MIPS/TrapEmul/TrapEmulVCPU+ASID.swift',
        edits=[
            ('        if asids.isStale(mm.cpuContext(cpu), cpu: cpu) { kvmGetNewMMUContext(mm) }\n    }\n\n    /// kvm_mips_check_asids()',
             '        if !guestKernelMode, asids.isStale(mm.cpuContext(cpu), cpu: cpu) { kvmGetNewMMUContext(mm) }\n    }\n\n    /// kvm_mips_check_asids()'),
        ],
        scenarios=['asid-lazy-regen', 'gva-flush']),
]
