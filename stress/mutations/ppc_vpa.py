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
        scenarios=['vpa-cross-register', 'vpa-stress']),

    # Issue 20, class 4: the registration contract (vpa-registration-contract).
    Mutation(
        name='vpa-clear-pending-before-pin', cls=4, kind='clear a flag before the pointer it guards (update_pending)',
        file='Sources/PPC/VPA/VPARegistration+Update.swift',
        edits=[
            ('        var gpa = 0\n        while true {\n',
             '        var gpa = 0\n        t.words.store(a.updatePending, 0)\n        while true {\n'),
            ('        t.words.store(a.updatePending, 0)\n        engine.cover(Self.markUpdatePending)\n',
             '        engine.cover(Self.markUpdatePending)\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-is-registered-swapped', cls=4, kind='swap a check (next_gpa vs pinned_addr in vpa_is_registered)',
        file='Sources/PPC/VPA/VPAVCPU.swift',
        edits=[
            ('return load(a.updatePending) != 0 ? load(a.nextGPA) != 0 : load(a.pinnedAddr) != 0',
             'return load(a.updatePending) != 0 ? load(a.pinnedAddr) != 0 : load(a.nextGPA) != 0'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-is-registered-ignores-pending', cls=4, kind='judge on the installed area only (v3.4-style vpa_is_registered)',
        file='Sources/PPC/VPA/VPAVCPU.swift',
        edits=[
            ('return load(a.updatePending) != 0 ? load(a.nextGPA) != 0 : load(a.pinnedAddr) != 0',
             'return load(a.pinnedAddr) != 0'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-dtl-without-vpa', cls=4, kind='drop a check (a DTL needs a VPA)',
        file='Sources/PPC/VPA/VPARegistration+Register.swift',
        edits=[
            ('            err = .resource                                          // they must have registered a VPA\n            if !t.isRegistered(.vpa) { break }\n',
             '            err = .resource                                          // they must have registered a VPA\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-dereg-vpa-without-dtl-check', cls=4, kind='drop a check (no VPA deregistration under a DTL)',
        file='Sources/PPC/VPA/VPARegistration+Register.swift',
        edits=[
            ('            if t.isRegistered(.dtl) || t.isRegistered(.slbShadow) { break }\n',
             '            if t.isRegistered(.slbShadow) { break }\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-dtl-recorded-on-resource', cls=4, kind='record a request the hcall refuses (H_RESOURCE returned, state written)',
        file='Sources/PPC/VPA/VPARegistration+Register.swift',
        edits=[
            ('            err = .resource                                          // they must have registered a VPA\n            if !t.isRegistered(.vpa) { break }\n            vpap = t.area(.dtl); err = .success\n',
             '            vpap = t.area(.dtl)\n            err = .resource                                          // they must have registered a VPA\n            if !t.isRegistered(.vpa) { break }\n            err = .success\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-slb-checks-dtl', cls=4, kind='check the wrong area (SLB shadow judged on the DTL)',
        file='Sources/PPC/VPA/VPARegistration+Register.swift',
        edits=[
            ('            err = .resource\n            if !t.isRegistered(.vpa) { break }\n            vpap = t.area(.slbShadow); err = .success\n',
             '            err = .resource\n            if !t.isRegistered(.dtl) { break }\n            vpap = t.area(.slbShadow); err = .success\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    # Issue 20, class 5: host writes in the wrong guest page (vpa-pinned-registered).
    Mutation(
        name='vpa-pin-gfn-rounded-up', cls=5, kind='off by one page (gfn rounded up in kvmppc_pin_guest_page)',
        file='Sources/PPC/VPA/GuestPagePinning.swift',
        edits=[
            ('        guard let hva = memslots.gfnToHva(gpa / PAPR.pageSize),\n',
             '        guard let hva = memslots.gfnToHva((gpa + PAPR.pageSize - 1) / PAPR.pageSize),\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-pin-next-gfn', cls=5, kind='off by one page (gfn_to_hva_memslot() of gfn + 1 in kvmppc_pin_guest_page)',
        file='Sources/PPC/VPA/GuestPagePinning.swift',
        edits=[
            ('        guard let hva = memslots.gfnToHva(gpa / PAPR.pageSize),\n',
             '        guard let hva = memslots.gfnToHva(gpa / PAPR.pageSize + 1),\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-pin-drops-offset', cls=5, kind='wrong address in the right page (page_address() without the offset)',
        file='Sources/PPC/VPA/GuestPagePinning.swift',
        edits=[
            ('        return (pfn * PAPR.pageSize + off, PAPR.pageSize - off)\n',
             '        return (pfn * PAPR.pageSize, PAPR.pageSize - off)\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-slb-recorded-as-vpa', cls=5, kind="record into another kind's area (REG_SLB copy-pasted from REG_VPA)",
        file='Sources/PPC/VPA/VPARegistration+Register.swift',
        edits=[
            ('            vpap = t.area(.slbShadow); err = .success\n        case .deregVPA:\n',
             '            vpap = t.area(.vpa); err = .success\n        case .deregVPA:\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
    Mutation(
        name='vpa-pin-nb-ignores-offset', cls=5, kind='area runs past its page (nb without the offset)',
        file='Sources/PPC/VPA/GuestPagePinning.swift',
        edits=[
            ('        return (pfn * PAPR.pageSize + off, PAPR.pageSize - off)\n',
             '        return (pfn * PAPR.pageSize + off, PAPR.pageSize)\n'),
        ],
        scenarios=['vpa-cross-register', 'vpa-stress']),
]
