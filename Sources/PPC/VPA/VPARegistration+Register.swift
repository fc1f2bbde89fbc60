// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// H_REGISTER_VPA (book3s_hv.c): kvmppc_pseries_do_hcall() -> do_h_register_vpa().
extension VPARegistration {
    /// The hcall: `caller` registers or deregisters an area of vcpu `target`.
    /// Argument errors of the hcall itself (no such vcpu, no such subfunction)
    /// are H_PARAMETER in every version.
    public func hRegisterVPA(caller: Int, subfunc rawSubfunc: Int, target: Int, gpa: Int) -> HCallStatus {
        guard target >= 0, target < vcpus.count else { return .parameter }   // kvmppc_find_vcpu()
        guard let subfunc = VPASubfunc(rawValue: rawSubfunc) else { return .parameter }
        return doHRegisterVPA(caller: caller, subfunc, vcpus[target], gpa: gpa)
    }

    /// do_h_register_vpa() (book3s_hv.c), in the form of each variant:
    /// - both first check the address (cache-line aligned; seed 003 also refuses
    ///   0) and pin the page to read the area's length word;
    /// - v3.4 (pre-fix) checks the VPA-first rule before pinning, keeps the new
    ///   area pinned (a VPA of at least 640 bytes, a DTL of 48, an SLB shadow of
    ///   16), and then, whatever the target is doing, sets the target's pointers
    ///   itself (`setAreaPointers`);
    /// - seed 003 (patched, v3.8 text) unpins at once, and under the target's
    ///   `vpa_update_lock` only records the request (`next_gpa`, `len`,
    ///   `update_pending`), judging the H_RESOURCE rules on the pending state;
    ///   the target switches areas itself (`kvmppcUpdateVPAs`).
    /// Locking: v3.4 none; v3.8 the target's `vpa_update_lock` around the
    /// request (`recordAreaUpdate`). Pinning may sleep, outside any lock.
    func doHRegisterVPA(caller: Int, _ subfunc: VPASubfunc, _ t: VPAVCPU, gpa: Int) -> HCallStatus {
        var len = 0
        var pinned: (va: KernelVA, nb: Int)? = nil
        if subfunc.isRegister {
            // Registering new area - address must be cache-line aligned.
            if gpa % PAPR.cacheLine != 0 || (variant.hasUpdateProtocol && gpa == 0) { return .parameter }
            if variant == .preFix && subfunc != .regVPA && t.load(VPAVCPU.preVPA) == 0 {
                engine.cover(Self.markResource)
                return .resource                                     // a DTL or SLB shadow needs a VPA
            }
            // Convert logical addr to kernel addr and read length.
            guard let (va, nb) = pinning.pin(gpa) else { return .parameter }
            len = readLength(gpa: gpa)
            switch variant {
            case .patched, .pinsSnapshot:
                pinning.unpin(va)
                if len > nb || len < PAPR.regVPASize { return .parameter }
            case .preFix:
                let minimum = [PAPR.lppacaSize, PAPR.dtlEntrySize, PAPR.v34SLBShadowMinimum][subfunc.kind.rawValue]
                if len > nb || len < minimum {
                    pinning.unpin(va)
                    return .parameter
                }
                pinned = (va, nb)
            }
        }
        switch variant {
        case .preFix:
            let rc = setAreaPointers(caller: caller, subfunc, t, pinned: pinned, len: len, gpa: gpa)
            oracle.pointersPublished(t)
            return rc
        case .patched, .pinsSnapshot: return recordAreaUpdate(caller: caller, subfunc, t, gpa: subfunc.isRegister ? gpa : 0, len: len)
        }
    }

    /// Seed 003 do_h_register_vpa() after its checks (v3.8 text): record the
    /// request under the target's `vpa_update_lock`; no pointer changes.
    private func recordAreaUpdate(caller: Int, _ subfunc: VPASubfunc, _ t: VPAVCPU, gpa vpa: Int, len: Int) -> HCallStatus {
        var len = len
        var err = HCallStatus.parameter
        var vpap: KVMPPCVPA? = nil
        t.vpaUpdateLock.lock()
        switch subfunc {
        case .regVPA:
            if len < PAPR.lppacaSize { break }
            vpap = t.area(.vpa); err = .success
        case .regDTL:
            if len < PAPR.dtlEntrySize { break }
            len -= len % PAPR.dtlEntrySize
            err = .resource                                          // they must have registered a VPA
            if !t.isRegistered(.vpa) { break }
            vpap = t.area(.dtl); err = .success
        case .regSLB:
            err = .resource
            if !t.isRegistered(.vpa) { break }
            vpap = t.area(.slbShadow); err = .success
        case .deregVPA:
            err = .resource                                          // a DTL or SLB shadow still registered
            if t.isRegistered(.dtl) || t.isRegistered(.slbShadow) { break }
            vpap = t.area(.vpa); err = .success
        case .deregDTL:
            vpap = t.area(.dtl); err = .success
        case .deregSLB:
            vpap = t.area(.slbShadow); err = .success
        }
        if let a = vpap {
            t.words.store(a.nextGPA, UInt64(vpa))
            t.words.store(a.len, UInt64(len))
            t.words.store(a.updatePending, 1)
        }
        oracle.hcallRecorded(subfunc, t, gpa: vpa, err)
        t.vpaUpdateLock.unlock()
        if err == .resource { engine.cover(Self.markResource) }
        engine.event("vcpu\(caller): H_REGISTER_VPA \(subfunc) for vcpu\(t.id) gpa \(hex(vpa)) len \(len) -> \(err)")
        return err
    }

    /// v3.4 do_h_register_vpa() after its checks (book3s_hv.c, v3.4). A
    /// registration (the new area `pinned`, already checked) that finds the
    /// target with an area of that kind unpins the *caller's*
    /// (`unpinOnReplace`), then sets the target's pointer (`init_vpa()` on a new
    /// VPA); a deregistration unpins the target's area and clears its pointer.
    /// `dtl_end` is set with `dtl` and left as it is when `dtl` is cleared. No
    /// lock: any vcpu writes any vcpu's pointers, whatever that vcpu is doing.
    private func setAreaPointers(caller: Int, _ subfunc: VPASubfunc, _ t: VPAVCPU, pinned: (va: KernelVA, nb: Int)?,
                                 len: Int, gpa: Int) -> HCallStatus {
        let vcpu = vcpus[caller]
        if let (va, _) = pinned {
            var len = len
            engine.point("h_register_vpa:set_pointers")
            switch subfunc {
            case .regVPA:
                if t.load(VPAVCPU.preVPA) != 0 { unpinOnReplace(caller: vcpu, t, .vpa, VPAVCPU.preVPA) }
                setPointer(t, VPAVCPU.preVPA, va, by: caller)
                oracle.installed(owner: t.id, .vpa, va..<(va + len), registeredGPA: gpa, len: len)
                initVPA(t, va, by: caller)
            case .regDTL:
                len -= len % PAPR.dtlEntrySize
                if t.load(VPAVCPU.preDTL) != 0 { unpinOnReplace(caller: vcpu, t, .dtl, VPAVCPU.preDTL) }
                setPointer(t, VPAVCPU.preDTL, va, by: caller)
                oracle.installed(owner: t.id, .dtl, va..<(va + len), registeredGPA: gpa, len: len)
                engine.point("h_register_vpa:dtl_end")
                setPointer(t, VPAVCPU.preDTLEnd, va + len, by: caller)
            default:
                if t.load(VPAVCPU.preSLB) != 0 { unpinOnReplace(caller: vcpu, t, .slbShadow, VPAVCPU.preSLB) }
                setPointer(t, VPAVCPU.preSLB, va, by: caller)
                oracle.installed(owner: t.id, .slbShadow, va..<(va + len), registeredGPA: gpa, len: len)
            }
        } else {
            switch subfunc {
            case .deregVPA:
                if t.load(VPAVCPU.preSLB) != 0 || t.load(VPAVCPU.preDTL) != 0 { engine.cover(Self.markResource); return .resource }
                let old = t.load(VPAVCPU.preVPA)
                if old == 0 { break }
                unpinInstalled(t, .vpa, old)
                setPointer(t, VPAVCPU.preVPA, 0, by: caller)
            case .deregDTL:
                let old = t.load(VPAVCPU.preDTL)
                if old == 0 { break }
                unpinInstalled(t, .dtl, old)
                engine.event("vcpu\(caller): deregistering vcpu\(t.id)'s DTL, unpinned it at \(hex(old)) (pfn \(old / PAPR.pageSize))")
                engine.point("h_register_vpa:clear_dtl")
                setPointer(t, VPAVCPU.preDTL, 0, by: caller)
            default:
                let old = t.load(VPAVCPU.preSLB)
                if old == 0 { break }
                unpinInstalled(t, .slbShadow, old)
                setPointer(t, VPAVCPU.preSLB, 0, by: caller)
            }
        }
        engine.event("vcpu\(caller): H_REGISTER_VPA \(subfunc) for vcpu\(t.id) gpa \(hex(gpa)) -> success")
        return .success
    }

    /// v3.4 do_h_register_vpa() replacing an area of the target:
    /// `if (tvcpu->arch.vpa) kvmppc_unpin_guest_page(kvm, vcpu->arch.vpa);` (the
    /// same for `dtl` and `slb_shadow`). `vcpu` is the caller: for its own area
    /// that is the old one; for another vcpu's, the target's old page stays
    /// pinned and the caller's own area, still in use, loses its pin (or, if
    /// the caller has none, the kernel puts `virt_to_page(NULL)`). The target's
    /// pointer is replaced next. No lock.
    func unpinOnReplace(caller vcpu: VPAVCPU, _ t: VPAVCPU, _ k: VPAKind, _ index: Int) {
        if vcpu.id != t.id { engine.cover(Self.markCallerUnpin) }
        oracle.uninstalled(owner: t.id, k)
        let va = vcpu.load(index)
        if vcpu.id != t.id {
            // Narration only (evaluated without access points).
            engine.event("vcpu\(vcpu.id): replacing vcpu\(t.id)'s \(k), unpins its own \(k) "
                         + (va == 0 ? "(none: put_page(virt_to_page(NULL)))" : "at \(hex(va)) (pfn \(va / PAPR.pageSize))")
                         + "; vcpu\(t.id)'s old \(k) at \(hex(t.load(index))) (pfn \(t.load(index) / PAPR.pageSize)) stays pinned")
        }
        pinning.unpin(va)
    }

    /// kvmppc_unpin_guest_page() of an area whose pointer is about to change
    /// (v3.4 deregistration, the owner's kvmppc_update_vpa() in v3.8).
    func unpinInstalled(_ t: VPAVCPU, _ k: VPAKind, _ va: KernelVA) {
        oracle.uninstalled(owner: t.id, k)
        pinning.unpin(va)
    }

    /// init_vpa(): shared_proc = 1, yield_count = 1, written through the new
    /// area (v3.4: by the caller, in do_h_register_vpa(); v3.6 on: by the owner,
    /// in kvmppc_update_vpas()). No lock.
    func initVPA(_ t: VPAVCPU, _ va: KernelVA, by writer: Int) {
        oracle.hostWrite(owner: t.id, .vpa, va + PAPR.yieldCountOffset, 4, by: writer, what: "init_vpa")
    }
}
