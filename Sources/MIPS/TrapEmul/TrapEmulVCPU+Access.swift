// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec

/// Guest accesses under trap and emulate, in guest user and guest kernel mode:
/// the host TLB, the GVA table refill (v4.11), kvm_mips_handle_tlbmiss() for the
/// mapped segments (useg, kseg2/3) and kvm_mips_handle_kseg0_tlb_fault() for kseg0.
extension TrapEmulVCPU {
    /// A guest user-mode load from useg page `vpn` of the running process.
    public func guestUserAccess(vpn: Int, check: (TrapEmulVCPU, MIPSTLB.Entry) -> Void) {
        precondition(TrapEmulGuestLayout.segment(vpn) == .useg, "guest user mode reaches useg only")
        guestAccess(vpn: vpn, check: check)
    }

    /// A guest kernel-mode load from page `vpn` (useg, kseg0 or kseg2/3): the guest is
    /// in kernel mode (an exception KVM delivered: `KVM_GUEST_KERNEL_MODE()`), so it
    /// runs on the guest kernel mm (its host ASID, its GVA table), and returns to user
    /// mode (eret) afterwards.
    public func guestKernelAccess(vpn: Int, check: (TrapEmulVCPU, MIPSTLB.Entry) -> Void) {
        guestKernelMode = true
        defer { guestKernelMode = false }
        guestAccess(vpn: vpn, check: check)
    }

    /// A guest load from page `vpn` in the current mode: enter the guest (the ASID
    /// checks of `beforeGuestEntry`), host TLB lookup with the running mm's host
    /// ASID, on a miss the host refill handler's walk of the running mm's GVA table
    /// (v4.11), and on a miss there an exit to KVM (kvmMipsHandleTLBMiss), then
    /// re-entry. `check` is called with the entry the access used.
    func guestAccess(vpn: Int, check: (TrapEmulVCPU, MIPSTLB.Entry) -> Void) {
        let kernel = guestKernelMode
        for _ in 0..<8 {
            beforeGuestEntry()
            engine.point("vcpu:enter_guest")
            guard state.enterGuestMode() else {                 // a request came in: handle it first
                engine.yieldPoint("vcpu_enter_guest:cancelled")
                continue
            }
            let tag = kernel ? hostKernelASID : hostUserASID
            if let e = tlb.lookup(tag: tag, vpn: vpn) {
                check(self, e)
                if vpn == TrapEmulGuestLayout.usegLastVPN { engine.cover(Self.markUsegLastPage) }
                state.exitGuestMode()
                engine.event("vcpu\(id): guest ASID \(entryHiASID) \(kernel ? "kernel" : "user") read of page 0x\(String(vpn, radix: 16)) on cpu\(cpu) (host ASID \(tag)) -> pfn \(e.pfn), filled by \(TLBOwner(raw: e.owner))")
                return
            }
            if let gva {
                // The host TLB refill handler walks the running mm's GVA table
                // (TLBMISS_HANDLER_SETUP_PGD(mm->pgd) at guest entry).
                let table = kernel ? gva.kernel : gva.user
                let (p, slot) = table.lookupLocklessSlot(vpn, point: "tlb_refill:gva_walk")
                if p.isPresent, let slot {
                    tlb.fill(.init(tag: tag, vpn: vpn, pfn: p.pfn, dirty: false, owner: table.owner(slot: slot)))
                    engine.event("vcpu\(id): TLB refill from GVA PT (\(kernel ? "kernel" : "user")): (ASID \(tag), page 0x\(String(vpn, radix: 16))) -> pfn \(p.pfn), filled for \(TLBOwner(raw: table.owner(slot: slot)))")
                    state.exitGuestMode()
                    continue
                }
            }
            state.exitGuestMode()
            engine.point("exit:tlb_miss")
            kvmMipsHandleTLBMiss(vpn: vpn, tag: tag)
        }
    }

    /// kvm_trap_emul_handle_tlb_miss() (arch/mips/kvm/trap_emul.c, v4.10-v4.11): a
    /// kseg0 address goes to kvm_mips_handle_kseg0_tlb_fault(), a useg or kseg2/3
    /// address to kvm_mips_handle_tlbmiss() (the guest TLB, then
    /// kvm_mips_handle_mapped_seg_tlb_fault()).
    func kvmMipsHandleTLBMiss(vpn: Int, tag: Int) {
        let kernel = guestKernelMode
        if TrapEmulGuestLayout.segment(vpn) == .kseg0 {
            precondition(kernel, "kseg0 is reached from guest kernel mode only")
            engine.cover(Self.markKernelKseg0Fault)
            let gfn = guestMapping(asid: 0, vpn: vpn)
            installTranslation(vpn: vpn, gfn: gfn, tag: tag, owner: TLBOwner.guestKernel(vcpu: id, guestASID: 0, gfn: gfn).raw)
            return
        }
        let asid = entryHiASID
        if kernel && TrapEmulGuestLayout.segment(vpn) == .kseg23 { engine.cover(Self.markKernelMappedFault) }
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
        let owner = kernel ? TLBOwner.guestKernel(vcpu: id, guestASID: asid, gfn: gfn) : .guestUser(vcpu: id, guestASID: asid, gfn: gfn)
        installTranslation(vpn: vpn, gfn: gfn, tag: tag, owner: owner.raw)
    }

    /// The mapping step of kvm_mips_handle_mapped_seg_tlb_fault() and
    /// kvm_mips_handle_kseg0_tlb_fault(): v4.10 writes the host TLB entry with the
    /// running mode's host ASID; v4.11 writes the GVA PTE of the running mode's mm
    /// (kvm_trap_emul_pte_for_gva(): `guest_kernel_mm.pgd` in guest kernel mode,
    /// `guest_user_mm.pgd` otherwise) and drops that ASID's host TLB entry
    /// (kvm_mips_host_tlb_inv(vcpu, gva, !kernel, kernel)) so the refill handler
    /// loads the new PTE.
    private func installTranslation(vpn: Int, gfn: Int, tag: Int, owner: UInt64) {
        let kernel = guestKernelMode
        if let gpaMMU, let gpaCache, let gva {
            // v4.11 with SYNC_MMU: the GPA PTE from kvm_mips_map_page() (outside
            // mmu_lock afterwards, like the kernel), copied into the GVA PTE; a flush
            // that raced with it reaches this vcpu as KVM_REQ_TLB_FLUSH before it
            // enters the guest again.
            guard case .success(let gpaPTE) = gpaMMU.kvmMipsMapPage(state, cache: gpaCache, gfn: gfn, write: false) else { return }
            engine.point("kvm_mips_handle_mapped_seg_tlb_fault:after_map_page")
            let (table, cache) = kernel ? (gva.kernel, gva.kernelCache) : (gva.user, gva.userCache)
            _ = cache.topup(min: 2, max: 4)
            if let s = table.walk(vpn, cache: cache) {
                table.set(slot: s, PTE(pfn: gpaPTE.pfn, flags: PTE.present | PTE.young), owner: owner)
            }
            tlb.invalidate(tag: tag, vpn: vpn)
            engine.event("vcpu\(id): TLB miss page 0x\(String(vpn, radix: 16)): \(kernel ? "kernel" : "user") GVA PT <- pfn \(gpaPTE.pfn) for \(TLBOwner(raw: owner))")
            return
        }
        if let gva {
            let (table, cache) = kernel ? (gva.kernel, gva.kernelCache) : (gva.user, gva.userCache)
            _ = cache.topup(min: 2, max: 4)
            if let s = table.walk(vpn, cache: cache) {
                table.set(slot: s, PTE(pfn: pfn(forGfn: gfn), flags: PTE.present | PTE.young), owner: owner)
            }
            tlb.invalidate(tag: tag, vpn: vpn)
            engine.event("vcpu\(id): TLB miss page 0x\(String(vpn, radix: 16)): \(kernel ? "kernel" : "user") GVA PT <- pfn \(pfn(forGfn: gfn)) for \(TLBOwner(raw: owner))")
            return
        }
        tlb.fill(.init(tag: tag, vpn: vpn, pfn: pfn(forGfn: gfn), dirty: false, owner: owner))
        engine.event("vcpu\(id): TLB miss page 0x\(String(vpn, radix: 16)): host TLB cpu\(cpu) <- (ASID \(tag), page 0x\(String(vpn, radix: 16))) for \(TLBOwner(raw: owner))")
    }

    /// kvm_mips_invalidate_guest_tlb() (arch/mips/kvm/emulate.c; added by
    /// 91e4f1b6073d "KVM: MIPS: Drop other CPU ASIDs on guest MMU changes", merged
    /// for v4.9 before seed 000; v4.10 form with the per-vcpu ASID arrays, v4.11
    /// form with `cpu_context()` and the GVA page tables): the guest's tlbwi/tlbwr
    /// overwrites a valid guest TLB entry for page `vpn`; `user = tlb_hi <
    /// KVM_GUEST_KSEG0` (a kseg2/3 entry concerns the guest kernel mm only). v4.11
    /// clears the GVA PTEs (kvm_trap_emul_invalidate_gva(): the kernel table, and
    /// the user one if `user`) and probes this CPU's TLB with both ASIDs
    /// (kvm_mips_host_tlb_inv(vcpu, tlb_hi, user, true)); v4.10 probes it with the
    /// user ASID only. The vcpu's host ASIDs on every other CPU are zeroed (the
    /// user one if `user`, the kernel one always): the next load there takes new ones.
    ///
    /// Locking: between preempt_disable() and preempt_enable(): the vcpu holds its
    /// CPU (`runLocks[cpu]`, asserted when the world gave them).
    func kvmMipsInvalidateGuestTLB(vpn: Int) {
        if let runLocks { runLocks[cpu].assertHeld("kvm_mips_invalidate_guest_tlb()") }
        let user = TrapEmulGuestLayout.segment(vpn) == .useg
        if let gva {
            // v4.11: kvm_trap_emul_invalidate_gva(vcpu, tlb->tlb_hi & VPN2_MASK, user).
            if let s = gva.kernel.walk(vpn, cache: nil) { gva.kernel.set(slot: s, .none, owner: 0) }
            if user, let s = gva.user.walk(vpn, cache: nil) { gva.user.set(slot: s, .none, owner: 0) }
        }
        if variant.usesPerVCPUArrays {
            tlb.invalidate(tag: hostUserASID, vpn: vpn)     // v4.10 kvm_mips_host_tlb_inv(): user ASID, this CPU
        } else {
            if user { tlb.invalidate(tag: hostUserASID, vpn: vpn) }   // kvm_mips_host_tlb_inv(.., user, true)
            tlb.invalidate(tag: hostKernelASID, vpn: vpn)
        }
        // "Invalidate the whole ASID on other CPUs"
        for i in 0..<asids.cpus where i != cpu {
            if variant.usesPerVCPUArrays {
                if user { userASIDs.store(i, 0) }           // vcpu->arch.guest_user_asid[i] = 0
                kernelASIDs.store(i, 0)                     // vcpu->arch.guest_kernel_asid[i] = 0
            } else {
                if user { guestUserMM.setCPUContext(i, 0) } // cpu_context(i, user_mm) = 0
                guestKernelMM.setCPUContext(i, 0)           // cpu_context(i, kern_mm) = 0
            }
        }
        engine.event("vcpu\(id): guest tlbwr replaces the entry of page 0x\(String(vpn, radix: 16)): host TLB entry dropped on cpu\(cpu), ASIDs of the other CPUs zeroed")
    }
}
