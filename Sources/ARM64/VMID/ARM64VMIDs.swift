// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A VM's VMID state in the allocator generation the variant runs:
/// `kvm->arch.mmu.vmid` (vmid.c, v5.18+) or `kvm->arch.vmid_gen / vmid /
/// vttbr` (virt/kvm/arm/arm.c, v4.15-v5.17).
public enum VMIDHandle: Sendable {
    case allocator(KVMVMID)
    case legacy(LegacyKVMVMID)
}

/// The machine's VMID allocator, whichever form the variant runs (one per
/// machine: all VMs share the VMID space), with what the run loop and the TLB
/// maintenance ask of it.
public final class ARM64VMIDs: @unchecked Sendable {
    public let scheme: Stage2Code.VMIDScheme
    public let allocator: VMIDAllocator?
    public let legacy: LegacyVMIDAllocator?
    public let vmidBits: Int

    public init(engine: SimEngine, scheme: Stage2Code.VMIDScheme, vmidBits: Int, domain: InnerShareableDomain) {
        self.scheme = scheme
        self.vmidBits = vmidBits
        switch scheme {
        case .allocator:
            allocator = VMIDAllocator(engine: engine, vmidBits: vmidBits, cpus: domain.cpus.count) { [unowned domain] in domain.flushVMContext() }
            legacy = nil
        case .legacy(let form):
            allocator = nil
            legacy = LegacyVMIDAllocator(engine: engine, vmidBits: vmidBits, form: form,
                                         forceVMExit: { [unowned domain] in domain.forceVMExit(from: -1) },
                                         flushVMContext: { [unowned domain] in domain.flushVMContext() })
        }
    }

    /// A VM's VMID state, never allocated yet.
    func makeHandle() -> VMIDHandle {
        switch scheme {
        case .allocator: return .allocator(KVMVMID())
        case .legacy: return .legacy(LegacyKVMVMID())
        }
    }

    /// The VMID field the VM's VTTBR carries if built now (kvm_get_vttbr();
    /// the legacy form's kvm->arch.vttbr as the hyp loads it at entry).
    public func vttbrVMID(_ h: VMIDHandle) -> Int {
        switch h {
        case .allocator(let v): return allocator!.vttbrVMID(v.value)
        case .legacy(let v): return legacy!.entryVMID(v)
        }
    }

    /// The VMID the VM holds now (oracles): its allocator id's VMID field, or
    /// the legacy kvm->arch.vmid.
    public func allocatedVMID(_ h: VMIDHandle) -> Int {
        switch h {
        case .allocator(let v): return allocator!.vttbrVMID(v.value)
        case .legacy(let v): return Int(v.vmid.peek(0))
        }
    }

    /// VMID generation rollovers so far (either allocator).
    public var rollovers: Int { Int(allocator?.rollovers ?? legacy?.rollovers ?? 0) }

    /// The counter runs report.
    public static let rolloverCounter = ProtocolCounter("s2-vmid-rollovers", "VMID generation rollovers")
}
