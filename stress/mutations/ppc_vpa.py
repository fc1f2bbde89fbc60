"""Mutations: PPC VPA / DTL / SLB shadow registration (seed 003)."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='vpa-publish-dtl-idx-first', cls=4, kind='set a flag early (dtl_idx)',
        file='Sources/PPC/VPA/VPARegistration+Guest.swift',
        edits=[
            ('        oracle.hostWrite(owner: t.id, .dtl, dt, PAPR.dtlEntrySize, by: t.id, what: "DTL entry")\n',
             '        oracle.dtlPublished(owner: t.id, index: t.words.load(VPAVCPU.dtlIndex) + 1)\n        oracle.hostWrite(owner: t.id, .dtl, dt, PAPR.dtlEntrySize, by: t.id, what: "DTL entry")\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-no-recheck-after-pin', cls=0, kind='skip a retry check',
        file='Sources/PPC/VPA/VPARegistration+Update.swift',
        edits=[
            ('            if gpa == t.load(a.nextGPA) { break }',
             '            break'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-register-without-lock', cls=3, kind='drop a lock',
        file='Sources/PPC/VPA/VPARegistration+Register.swift',
        edits=[
            ('        var vpap: KVMPPCVPA? = nil\n        t.vpaUpdateLock.lock()\n',
             '        var vpap: KVMPPCVPA? = nil\n'),
            ('        t.vpaUpdateLock.unlock()\n        if err == .resource',
             '        if err == .resource'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-drop-dtl-barrier', cls=0, kind='drop a barrier',
        file='Sources/PPC/VPA/VPARegistration+Guest.swift',
        edits=[
            ('        smp_wmb()                                                     // order writing *dt vs. writing vpa->dtl_idx\n',
             '\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress'],
        survivor="equivalent in the model: kvmsim explores a sequentially consistent model (C11 atomics), so a missing smp_wmb() is invisible; weak memory is herd7/GenMC's job"),
]
