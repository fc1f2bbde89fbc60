// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

extension Oracle {
    /// Seed 000's invariant, for guest user and guest kernel mode.
    public static let staleASID = Oracle("stale-asid", "a guest access translates only through a host TLB entry filled for this vcpu, the guest mm of its mode (user or kernel), its running guest process (mapped segments) and the page that process maps")
}

/// The invariant of the trap-and-emulate guest ASIDs: the host TLB entry a
/// guest access used must have been filled for this vcpu, for the guest mm of
/// the mode it runs in (`guest_user_mm` in guest user mode, `guest_kernel_mm` in
/// guest kernel mode: the two never share a live host ASID), for the guest
/// process running now (EntryHi.ASID; not for kseg0, which is unmapped and the
/// same in every process) and for the gfn that process maps at the page. With
/// GPA page tables behind the GVA fills (gva-flush), the access is also checked
/// against the host's pages (`MMUOracle`).
public final class StaleASIDOracle: @unchecked Sendable {
    public static let oracles: [Oracle] = [.staleASID]
    let engine: SimEngine
    /// The GPA side's oracle, when guest RAM is backed by the host mm.
    let memoryOracle: MMUOracle?

    public init(engine: SimEngine, memoryOracle: MMUOracle?) {
        self.engine = engine
        self.memoryOracle = memoryOracle
    }

    /// The record a correct translation of page `vpn` for `v` now carries.
    static func expectedOwner(_ v: TrapEmulVCPU, vpn: Int) -> TLBOwner {
        let g = v.entryHiASID
        if v.guestKernelMode {
            if TrapEmulGuestLayout.segment(vpn) == .kseg0 {
                return .guestKernel(vcpu: v.id, guestASID: 0, gfn: v.guestMapping(asid: 0, vpn: vpn))
            }
            return .guestKernel(vcpu: v.id, guestASID: g, gfn: v.guestMapping(asid: g, vpn: vpn))
        }
        return .guestUser(vcpu: v.id, guestASID: g, gfn: v.guestMapping(asid: g, vpn: vpn))
    }

    /// A guest access of `v` (in the mode it is in) went through TLB entry `e`.
    public func access(_ v: TrapEmulVCPU, _ e: MIPSTLB.Entry) {
        withoutAccessPoints {
            let want = Self.expectedOwner(v, vpn: e.vpn)
            let got = TLBOwner(raw: e.owner)
            if got != want {
                engine.report(.staleASID,
                              "vcpu\(v.id) guest process ASID \(v.entryHiASID) \(v.guestKernelMode ? "kernel" : "user")-mode read of page 0x\(String(e.vpn, radix: 16)) on cpu\(v.cpu) through host ASID \(e.tag), an entry filled for \(got) (wanted \(want))")
            } else if let gfn = got.gfn, let memoryOracle {
                memoryOracle.guestAccess(vcpu: v.id, gfn: gfn, pfn: e.pfn, write: nil, via: "TLB")
            }
        }
    }
}
