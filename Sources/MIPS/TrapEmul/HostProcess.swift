// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A host process that runs on host CPUs between vcpus and uses ASIDs from the same
/// allocator: the source of ASID cycles.
public final class HostProcess: @unchecked Sendable {
    public let id: Int
    public let mm: MipsMM
    public init(id: Int, cpus: Int) {
        self.id = id
        mm = MipsMM(name: "host process \(id)", cpus: cpus)
    }

    /// switch_mm() to this process on `cpu`, then a user access that fills a TLB entry.
    public func run(cpu: Int, asids: ASIDAllocator, tlb: MIPSTLB, vpn: Int, engine: SimEngine) {
        mm.checkMMUContext(cpu: cpu, asids: asids, tlb: tlb)
        let asid = Int(mm.cpuContext(cpu) & asids.asidMask)
        tlb.fill(.init(tag: asid, vpn: vpn, pfn: 1_000_000 + id, dirty: false, owner: TLBOwner.hostProcess(id).raw))
        engine.event("host process \(id) runs on cpu\(cpu) with ASID \(asid) (version \(mm.cpuContext(cpu) >> asids.bits))")
    }
}
