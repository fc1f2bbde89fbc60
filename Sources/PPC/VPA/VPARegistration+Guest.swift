// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The owner's use of its areas: kvmppc_create_dtl_entry() (v3.6 on), the VPA
/// yield count at guest entry and exit, and one guest run.
extension VPARegistration {
    /// The VPA the owner's host code writes: `VCPU_VPA(vcpu)`, which is
    /// `vcpu->arch.vpa` in v3.4 and `vcpu->arch.vpa.pinned_addr` from seed 003 on.
    func vpaAddr(_ t: VPAVCPU) -> KernelVA { t.load(variant.hasUpdateProtocol ? t.area(.vpa).pinnedAddr : VPAVCPU.preVPA) }

    /// kvmppc_create_dtl_entry() (book3s_hv.c, v3.8 text; first in v3.6, absent
    /// from v3.4): one entry at `dtl_ptr`, wrap at `pinned_end`, smp_wmb(), then
    /// publish `vpa->dtl_idx`. By the owner, before guest entry, no lock (the
    /// owner alone writes `dtl_ptr` / `dtl_index`). Not called in pre-fix.
    /// With a guest reader (`VPAVCPU.guestLog`) the entry and `vpa->dtl_idx`
    /// are stores to guest memory it can see, ordered by the smp_wmb() alone.
    public func kvmppcCreateDTLEntry(_ t: VPAVCPU) {
        precondition(variant.hasDTLWriter, "v3.4 has no kvmppc_create_dtl_entry()")
        let dt = t.load(VPAVCPU.dtlPtr)
        let vpa = vpaAddr(t)
        if dt == 0 || vpa == 0 { return }
        engine.point("kvmppc_create_dtl_entry:write")
        oracle.hostWrite(owner: t.id, .dtl, dt, PAPR.dtlEntrySize, by: t.id, what: "DTL entry")
        let tag = t.dtlGeneration << 32
        if let log = t.guestLog {                                           // the entry's contents
            let index = t.words.loadRelaxed(VPAVCPU.dtlIndex)
            log.store(VPAVCPU.logEntry(index), tag | (index + 1))
        }
        var next = dt + PAPR.dtlEntrySize
        let end = t.load(t.area(.dtl).pinnedEnd)
        if next == end { engine.cover(Self.markDTLWrap); next = t.load(t.area(.dtl).pinnedAddr) }
        setPointer(t, VPAVCPU.dtlPtr, next, by: t.id)
        engine.event("vcpu\(t.id): DTL entry written at \(hex(dt)), dtl_ptr -> \(hex(next))\(next == dt + PAPR.dtlEntrySize ? "" : " (wrapped)")")
        smp_wmb()                                                     // order writing *dt vs. writing vpa->dtl_idx
        let idx = t.words.addRelaxed(VPAVCPU.dtlIndex, 1)                 // ++vcpu->arch.dtl_index: a plain increment
        t.guestLog?.store(VPAVCPU.logIdx, tag | idx)                                // vpa->dtl_idx = ...
        oracle.dtlPublished(owner: t.id, index: idx)
        oracle.hostWrite(owner: t.id, .vpa, vpa + PAPR.dtlIdxOffset, 8, by: t.id, what: "vpa->dtl_idx")
    }

    /// A guest reading another vcpu's dispatch trace log as it runs:
    /// dtl_file_read() (arch/powerpc/platforms/pseries/dtl.c, v3.8) reads
    /// `lppaca[dtl->cpu].dtl_idx`, then copies the entries below it out of the
    /// buffer the hypervisor writes. Reads the newest entry, after an smp_rmb()
    /// (v3.8's reader has none: here loads are never reordered, so the check
    /// judges the writer's side, the smp_wmb() of kvmppc_create_dtl_entry()).
    /// By the reading vcpu, in the guest, no lock. Only with a guest log
    /// (`VPAVCPU.guestLog`).
    public func guestReadDTL(reader: Int, of t: VPAVCPU) {
        guard let log = t.guestLog else { return }
        let published = log.load(VPAVCPU.logIdx)
        let idx = published & 0xffff_ffff
        if idx == 0 { return }
        engine.point("dtl_file_read:copy_to_user")
        smp_rmb()
        let entry = log.load(VPAVCPU.logEntry(idx - 1))
        oracle.guestReadDTL(reader: reader, owner: t.id, published: published, entry: entry)
    }

    /// The yield count increment at guest entry (kvmppc_hv_entry) and on the
    /// exit path (book3s_hv_rmhandlers.S; quoted from v3.4), each through a
    /// fresh load of the vcpu's VPA pointer: `ld r3, VCPU_VPA(r4); cmpdi r3, 0;
    /// beq 25f; lwz r5, LPPACA_YIELDCOUNT(r3); addi r5, r5, 1; stw r5,
    /// LPPACA_YIELDCOUNT(r3)`. The v3.4 exit path then reads `LPPACA_PMCINUSE`
    /// through the same pointer (a read: not modelled). Later kernels keep the
    /// increment, `VCPU_VPA` naming `arch.vpa.pinned_addr`. By the owner, in
    /// real mode, no lock.
    public func bumpYieldCount(_ t: VPAVCPU) {
        let vpa = vpaAddr(t)
        if vpa == 0 { return }
        oracle.hostWrite(owner: t.id, .vpa, vpa + PAPR.yieldCountOffset, 4, by: t.id, what: "yield_count")
    }

    /// One guest run of the owner (kvmppc_run_core() and the real-mode entry and
    /// exit): update its areas (seed 003 on), write a DTL entry (v3.6 on), enter
    /// (yield count), run, exit (yield count). Its pointers are in use from the
    /// DTL entry (v3.4: the entry) to the exit.
    public func runGuest(_ t: VPAVCPU) {
        kvmppcUpdateVPAs(t)
        oracle.owner(t.id, inUse: true)
        if variant.hasDTLWriter { kvmppcCreateDTLEntry(t) }
        bumpYieldCount(t)
        engine.point("guest:run")
        bumpYieldCount(t)
        oracle.owner(t.id, inUse: false)
    }
}
