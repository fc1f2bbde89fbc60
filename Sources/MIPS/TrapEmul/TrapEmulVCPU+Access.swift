// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec

/// Guest user-mode accesses under trap and emulate: the host TLB, the GVA
/// table refill (v4.11), and kvm_mips_handle_tlbmiss().
extension TrapEmulVCPU {
    /// A guest user-mode load from virtual page `vpn` of the running process: enter
    /// the guest (check ASIDs), host TLB lookup with the user host ASID, and on a miss
    /// exit to KVM (kvm_mips_handle_tlbmiss), which refills the guest TLB if needed
    /// (the guest's refill handler, emulated tlbwr) and writes the host TLB
    /// (kvm_mips_handle_mapped_seg_tlb_fault, v4.10), then re-enters.
    /// `check` is called with the entry the access used.
    public func guestUserAccess(vpn: Int, check: (TrapEmulVCPU, MIPSTLB.Entry) -> Void) {
        for _ in 0..<8 {
            beforeGuestEntry()
            engine.point("vcpu:enter_guest")
            guard state.enterGuestMode() else {                 // a request came in: handle it first
                engine.yieldPoint("vcpu_enter_guest:cancelled")
                continue
            }
            let tag = hostUserASID
            if let e = tlb.lookup(tag: tag, vpn: vpn) {
                check(self, e)
                state.exitGuestMode()
                engine.event("vcpu\(id): guest ASID \(entryHiASID) user read of page \(vpn) on cpu\(cpu) (host ASID \(tag)) -> pfn \(e.pfn), filled by \(TLBOwner(raw: e.owner))")
                return
            }
            if let gva {
                // The host TLB refill handler walks the running mm's GVA table.
                let (p, slot) = gva.user.lookupLocklessSlot(vpn, point: "tlb_refill:gva_walk")
                if p.isPresent, let slot {
                    tlb.fill(.init(tag: tag, vpn: vpn, pfn: p.pfn, dirty: false, owner: gva.user.owner(slot: slot)))
                    engine.event("vcpu\(id): TLB refill from GVA PT: (ASID \(tag), page \(vpn)) -> pfn \(p.pfn), filled for \(TLBOwner(raw: gva.user.owner(slot: slot)))")
                    state.exitGuestMode()
                    continue
                }
            }
            state.exitGuestMode()
            engine.point("exit:tlb_miss")
            kvmMipsHandleTLBMiss(vpn: vpn, tag: tag)
        }
    }

    /// kvm_mips_handle_tlbmiss() for a guest user address.
    func kvmMipsHandleTLBMiss(vpn: Int, tag: Int) {
        let asid = entryHiASID
        if !guestTLB.contains(where: { $0.vpn == vpn && $0.asid == asid }) {
            // The guest's TLB refill handler runs and writes the guest TLB (tlbwr).
            if guestTLB.count >= guestTLBSize {
                // kvm_mips_emul_tlbwr(): the entry at the index written is replaced.
                let old = guestTLB.removeFirst()
                kvmMipsInvalidateGuestTLB(vpn: old.vpn)
            }
            guestTLB.append((vpn, asid))
        }
        let gfn = guestMapping(asid: asid, vpn: vpn)
        let owner = TLBOwner.guestUser(vcpu: id, guestASID: asid, gfn: gfn).raw
        if let gpaMMU, let gpaCache, let gva {
            // kvm_mips_handle_mapped_seg_tlb_fault() (v4.11): the GPA PTE from
            // kvm_mips_map_page() (outside mmu_lock afterwards, like the kernel),
            // copied into the GVA PTE; a flush that raced with it reaches this vcpu
            // as KVM_REQ_TLB_FLUSH before it enters the guest again.
            guard case .success(let gpaPTE) = gpaMMU.kvmMipsMapPage(state, cache: gpaCache, gfn: gfn, write: false) else { return }
            engine.point("kvm_mips_handle_mapped_seg_tlb_fault:after_map_page")
            _ = gva.userCache.topup(min: 2, max: 4)
            if let s = gva.user.walk(vpn, cache: gva.userCache) {
                gva.user.set(slot: s, PTE(pfn: gpaPTE.pfn, flags: PTE.present | PTE.young), owner: owner)
            }
            tlb.invalidate(tag: tag, vpn: vpn)
            engine.event("vcpu\(id): TLB miss page \(vpn): GVA PT <- pfn \(gpaPTE.pfn) for guest ASID \(asid), gfn \(gfn)")
            return
        }
        if let gva {
            // kvm_mips_handle_mapped_seg_tlb_fault() (v4.11): write the GVA PTE, then
            // drop the host TLB entry so that the refill handler loads the new one.
            _ = gva.userCache.topup(min: 2, max: 4)
            if let s = gva.user.walk(vpn, cache: gva.userCache) {
                gva.user.set(slot: s, PTE(pfn: pfn(forGfn: gfn), flags: PTE.present | PTE.young), owner: owner)
            }
            tlb.invalidate(tag: tag, vpn: vpn)
            engine.event("vcpu\(id): TLB miss page \(vpn): GVA PT <- pfn \(pfn(forGfn: gfn)) for guest ASID \(asid), gfn \(gfn)")
            return
        }
        tlb.fill(.init(tag: tag, vpn: vpn, pfn: pfn(forGfn: gfn), dirty: false, owner: owner))
        engine.event("vcpu\(id): TLB miss page \(vpn): host TLB cpu\(cpu) <- (ASID \(tag), page \(vpn)) for guest ASID \(asid), gfn \(gfn)")
    }

    /// kvm_mips_invalidate_guest_tlb() (arch/mips/kvm/emulate.c; added by
    /// 91e4f1b6073d "KVM: MIPS: Drop other CPU ASIDs on guest MMU changes", merged
    /// for v4.9 before seed 000; v4.10 form with the per-vcpu ASID arrays, v4.11
    /// form with `cpu_context()` and the GVA page tables): the guest's tlbwi/tlbwr
    /// overwrites a valid guest TLB entry for user page `vpn`. The host TLB entry
    /// shadowing it is dropped on this CPU only (kvm_mips_host_tlb_inv()), so the
    /// vcpu's host ASIDs on every other CPU are zeroed: the next load there takes
    /// new ones. Every entry the model's guest writes is valid and maps useg
    /// (`tlb_hi < KVM_GUEST_KSEG0`), so `user` is always true.
    ///
    /// Locking: between preempt_disable() and preempt_enable(): the vcpu holds its
    /// CPU (`runLocks[cpu]`, asserted when the world gave them).
    func kvmMipsInvalidateGuestTLB(vpn: Int) {
        if let runLocks { runLocks[cpu].assertHeld("kvm_mips_invalidate_guest_tlb()") }
        if let gva {
            // v4.11: kvm_trap_emul_invalidate_gva(vcpu, tlb->tlb_hi & VPN2_MASK, user).
            for t in [gva.kernel, gva.user] { if let s = t.walk(vpn, cache: nil) { t.set(slot: s, .none, owner: 0) } }
        }
        tlb.invalidate(tag: hostUserASID, vpn: vpn)         // kvm_mips_host_tlb_inv(): this CPU
        // "Invalidate the whole ASID on other CPUs"
        for i in 0..<asids.cpus where i != cpu {
            if variant.usesPerVCPUArrays {
                userASIDs.store(i, 0)                       // vcpu->arch.guest_user_asid[i] = 0
                kernelASIDs.store(i, 0)                     // vcpu->arch.guest_kernel_asid[i] = 0
            } else {
                guestUserMM.setCPUContext(i, 0)             // cpu_context(i, user_mm) = 0
                guestKernelMM.setCPUContext(i, 0)           // cpu_context(i, kern_mm) = 0
            }
        }
        engine.event("vcpu\(id): guest tlbwr replaces the entry of page \(vpn): host TLB entry dropped on cpu\(cpu), ASIDs of the other CPUs zeroed")
    }
}
