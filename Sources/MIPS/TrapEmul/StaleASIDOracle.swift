// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

extension Oracle {
    /// Seed 000's invariant.
    public static let staleASID = Oracle("stale-asid", "a guest user access translates only through a host TLB entry filled for this vcpu, its running guest process and the page that process maps")
}

/// The invariant of the trap-and-emulate guest ASIDs: the host TLB entry a
/// guest user access used must have been filled for this vcpu, the guest
/// process running now (EntryHi.ASID) and the gfn that process maps at the
/// page. With GPA page tables behind the GVA fills (gva-flush), the access is
/// also checked against the host's pages (`MMUOracle`).
public final class StaleASIDOracle: @unchecked Sendable {
    public static let oracles: [Oracle] = [.staleASID]
    let engine: SimEngine
    /// The GPA side's oracle, when guest RAM is backed by the host mm.
    let memoryOracle: MMUOracle?

    public init(engine: SimEngine, memoryOracle: MMUOracle?) {
        self.engine = engine
        self.memoryOracle = memoryOracle
    }

    /// A guest user access of `v` went through TLB entry `e`.
    public func userAccess(_ v: TrapEmulVCPU, _ e: MIPSTLB.Entry) {
        withoutAccessPoints {
            let g = v.entryHiASID
            let want = TLBOwner.guestUser(vcpu: v.id, guestASID: g, gfn: v.guestMapping(asid: g, vpn: e.vpn))
            let got = TLBOwner(raw: e.owner)
            if got != want {
                engine.report(.staleASID,
                              "vcpu\(v.id) guest process ASID \(g) read user page \(e.vpn) on cpu\(v.cpu) through host ASID \(e.tag), an entry filled for \(got)")
            } else if case let .guestUser(_, _, gfn) = got, let memoryOracle {
                memoryOracle.guestAccess(vcpu: v.id, gfn: gfn, pfn: e.pfn, write: nil, via: "TLB")
            }
        }
    }
}
