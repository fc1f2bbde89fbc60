// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Guest entry and exit (kvmppc_run_core() in book3s_hv.c, kvmppc_hv_entry in
/// book3s_hv_rmhandlers.S), the HPT reset, and the placement of vcores on cores.
extension Book3SHV {
    /// The primary thread's TLB flush check in kvmppc_hv_entry (seed 002): if this
    /// core's bit of `need_tlb_flush` is set, clear it (ldarx/andc/stdcx.), then
    /// flush every TLB entry of this LPID on the core. Per core, not per thread.
    func primaryThreadEntry(_ vc: Vcore) {
        count(.vcoreEntries)
        guard variant.hasGlobalInvalidates, let pcpu = vc.pcpu else { return }
        if clearNeedTLBFlush(pcpu) {
            host.tlbs[pcpu / host.threadsPerCore].flushPartition(lpid: lpid)
            count(.entryFlushes)
            engine.cover(Self.markNeedFlushConsumed)
            engine.event("vcore\(vc.id): need_tlb_flush set for cpu \(pcpu): flush core \(pcpu / host.threadsPerCore)")
        }
    }

    /// Each thread's TLB flush check in the pre-fix kvmppc_hv_entry: index
    /// `r6 = (this cpu & ~3) | (vcpu_id & 3)` ("map as if threads 1:1 p:v");
    /// flush unless this vcpu last ran on r6 and r6 last ran this vcpu.
    func threadEntry(_ vcpu: PPCVCPU) {
        count(.threadEntries)
        guard variant == .preFix, let pcpu = vcpu.vcore.pcpu else { return }
        let thisCPU = pcpu + vcpu.ptid
        let r6 = (thisCPU & ~3) | (vcpu.id & 3)
        if r6 != vcpu.lastCPU || Int(lastVCPU.load(r6)) != vcpu.id {
            vcpu.lastCPU = r6
            lastVCPU.store(r6, UInt64(vcpu.id))
            host.tlbs[thisCPU / host.threadsPerCore].flushPartition(lpid: lpid)
            count(.entryFlushes)
            engine.cover(Self.markLastCPUFlush)
            engine.event("vcpu\(vcpu.id): last_cpu/last_vcpu mismatch on cpu \(thisCPU): flush core \(thisCPU / host.threadsPerCore)")
        }
    }

    /// kvmppc_vcpu_run()'s `vcpus_running` count and the rma_setup_done check
    /// (kvmppc_hv_setup_htab_rma() when the HPT was reset).
    func vcpusRunning(_ delta: Int) {
        if delta > 0 {
            vmWords.add(0, .vcpusRunning, 1)
            smp_mb()
            if vmWords.load(0, .rmaSetupDone) == 0 { vmWords.store(0, .rmaSetupDone, 1) }
        } else {
            vmWords.sub(0, .vcpusRunning, 1)
        }
    }

    /// kvmppc_alloc_reset_hpt() on an existing HPT (KVM_PPC_ALLOCATE_HTAB):
    /// refused while any vcpu runs; else every HPTE is cleared and every core must
    /// flush before its next guest entry (patched: all `need_tlb_flush` bits;
    /// pre-fix: `last_vcpu[]` filled with an invalid vcpu number). The model also
    /// empties the rmap chains (v3.8 did not; kvmppc_rmap_reset() came later).
    public func kvmppcAllocResetHPT() -> Bool {
        vmWords.store(0, .rmaSetupDone, 0)
        smp_mb()
        if vmWords.load(0, .vcpusRunning) != 0 { vmWords.store(0, .rmaSetupDone, 1); return false }
        for i in 0..<hpt.npte { oracle.guestInvalidated(i, gen: oracle.generation(i), .remove, local: false, vcpu: 0) }
        hpt.clearAll()
        rmap.clearAll()
        switch variant {
        case .patched, .upstream313: needTLBFlush.store(0, allCPUs)
        case .preFix: for c in 0..<host.cpus { lastVCPU.store(c, 0xffff) }
        }
        engine.event("kvmppc_alloc_reset_hpt(): HPT cleared")
        return true
    }

    // MARK: - vcore placement

    /// The runner places vcore `vc` on a free core (`vc->pcpu` = its thread 0).
    /// Returns false if every core is busy.
    func place(_ vc: Vcore, preferring core: Int) -> Bool {
        for k in 0..<host.cores {
            let c = (core + k) % host.cores
            if host.coreOwner.cas(c, 0, UInt64(vc.id + 1)) {
                vc.words.store(0, .pcpu, UInt64(c * host.threadsPerCore + 1))
                return true
            }
        }
        return false
    }

    func release(_ vc: Vcore) {
        guard let p = vc.pcpu else { return }
        host.coreOwner.store(p / host.threadsPerCore, 0)
    }

    // MARK: - vcore runs

    /// One guest run of vcore `vc` by its runner (kvmppc_run_core()): take a free
    /// core (preferring `core`), do the primary thread's entry, let the vcpus run
    /// (`in_guest`), wait until each has exited, leave the core. Returns false if
    /// the run was asked to stop.
    public func kvmppcRunCore(_ vc: Vcore, preferring core: Int) -> Bool {
        vcpusRunning(1)
        defer { vcpusRunning(-1) }
        engine.waitUntil("kvmppc_run_core:free_core") { [self] in
            engine.stopRequested || (0..<host.cores).contains { host.coreOwner.load($0) == 0 }
        }
        guard !engine.stopRequested else { return false }
        guard place(vc, preferring: core) else { return true }
        engine.event("vcore\(vc.id): runs on core \(vc.pcpu! / host.threadsPerCore)")
        primaryThreadEntry(vc)
        let gen = vc.entryGeneration + 1
        vc.words.store(0, .entryGeneration, gen)
        vc.words.store(0, .inGuest, 1)                                        // vc->in_guest
        engine.waitUntil("kvmppc_run_core:threads_exit") { [engine] in
            engine.stopRequested || (0..<vc.vcpus.count).allSatisfy { vc.acks.load($0) >= gen }
        }
        vc.words.store(0, .inGuest, 0)
        release(vc)
        return !engine.stopRequested
    }

    /// A vcpu's thread waits for its vcore's next guest entry after `last` and
    /// does the per-thread part of kvmppc_hv_entry. nil when the run stops.
    public func enterGuest(_ vcpu: PPCVCPU, after last: UInt64) -> UInt64? {
        let vc = vcpu.vcore
        engine.waitUntil("kvmppc_hv_entry:wait_in_guest") { [engine] in
            engine.stopRequested || (vc.inGuest && vc.entryGeneration > last)
        }
        guard !engine.stopRequested else { return nil }
        threadEntry(vcpu)
        return vc.entryGeneration
    }

    /// The vcpu's thread leaves the guest (the exit path back to kvmppc_run_core).
    public func exitGuest(_ vcpu: PPCVCPU, generation: UInt64) {
        vcpu.vcore.acks.store(vcpu.ptid, generation)
    }

    /// The vcpu has nothing more to run: its vcore no longer waits for it.
    public func vcpuDone(_ vcpu: PPCVCPU) { vcpu.vcore.acks.store(vcpu.ptid, .max) }

    /// Whether every vcpu of `vc` is done.
    public func allDone(_ vc: Vcore) -> Bool { (0..<vc.vcpus.count).allSatisfy { vc.acks.load($0) == .max } }
}
