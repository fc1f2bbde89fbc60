// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The owner's use of its areas: kvmppc_create_dtl_entry(), the VPA yield count
/// at guest entry and exit, and one guest run.
extension VPARegistration {
    /// The VPA the owner uses (`vcpu->arch.vpa.pinned_addr`, pre-fix `vcpu->arch.vpa`).
    func vpaAddr(_ t: VPAVCPU) -> KernelVA { t.load(variant.hasUpdateProtocol ? t.area(.vpa).pinnedAddr : VPAVCPU.preVPA) }

    /// kvmppc_create_dtl_entry(): one entry at `dtl_ptr`, wrap at the DTL's end,
    /// smp_wmb(), then publish `vpa->dtl_idx`. By the owner, before guest entry.
    public func kvmppcCreateDTLEntry(_ t: VPAVCPU) {
        let dt = t.load(VPAVCPU.dtlPtr)
        let vpa = vpaAddr(t)
        if dt == 0 || vpa == 0 { return }
        engine.point("kvmppc_create_dtl_entry:write")
        oracle.hostWrite(owner: t.id, .dtl, dt, PAPR.dtlEntrySize, by: t.id, what: "DTL entry")
        var next = dt + PAPR.dtlEntrySize
        let end = t.load(variant.hasUpdateProtocol ? t.area(.dtl).pinnedEnd : VPAVCPU.preDTLEnd)
        if next == end { engine.cover(Self.markDTLWrap); next = t.load(variant.hasUpdateProtocol ? t.area(.dtl).pinnedAddr : VPAVCPU.preDTL) }
        setPointer(t, VPAVCPU.dtlPtr, next, by: t.id)
        engine.event("vcpu\(t.id): DTL entry written at \(hex(dt)), dtl_ptr -> \(hex(next))\(next == dt + PAPR.dtlEntrySize ? "" : " (wrapped)")")
        smp_wmb()                                                     // order writing *dt vs. writing vpa->dtl_idx
        let idx = t.words.add(VPAVCPU.dtlIndex, 1)
        oracle.dtlPublished(owner: t.id, index: idx)
        oracle.hostWrite(owner: t.id, .vpa, vpa + PAPR.dtlIdxOffset, 8, by: t.id, what: "vpa->dtl_idx")
    }

    /// The yield count increment of kvmppc_hv_entry / the guest exit path.
    public func bumpYieldCount(_ t: VPAVCPU) {
        let vpa = vpaAddr(t)
        if vpa == 0 { return }
        oracle.hostWrite(owner: t.id, .vpa, vpa + PAPR.yieldCountOffset, 4, by: t.id, what: "yield_count")
    }

    /// One guest run of the owner: update its areas (patched), write a DTL entry,
    /// enter (yield count), run, exit (yield count). Its pointers are in use from
    /// the DTL entry to the exit.
    public func runGuest(_ t: VPAVCPU) {
        kvmppcUpdateVPAs(t)
        oracle.owner(t.id, inUse: true)
        kvmppcCreateDTLEntry(t)
        bumpYieldCount(t)
        engine.point("guest:run")
        bumpYieldCount(t)
        oracle.owner(t.id, inUse: false)
    }
}
