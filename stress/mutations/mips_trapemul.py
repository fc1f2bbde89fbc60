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
