// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore

/// A VM's stage-2 MMU as arch/arm64/kvm/mmu.c runs it (v6.6 text; text read:
/// a v6.6-based tree, checked against the stable and kvmarm mails, see
/// docs/mechanisms/arm64-stage2.md): `struct kvm_s2_mmu` with its page table
/// and VMID, the fault path (`+Fault`: kvm_handle_guest_abort(),
/// user_mem_abort(), handle_access_fault()), the MMU-notifier hooks and dirty
/// logging's write protection (`+Notifier`), and the TLB maintenance the page
/// table asks for, sent to every CPU of the inner-shareable domain under this
/// VM's current VMID.
///
/// Locking rules (kernel's): faults hold kvm->mmu_lock for read (since v6.2,
/// 1577cb5823ce) and change entries through shared walks (cmpxchg, under
/// RCU); the notifier's hooks, aging and write protection hold it for write.
/// The fault's snapshot of mmu_invalidate_seq is checked again with the lock
/// held (mmu_invalidate_retry(): any invalidation in the VM, not just the gfn's).
public final class Stage2MMU: KVMGFNRangeArch, Stage2TLBInvalidation, @unchecked Sendable {
    /// The oracles this MMU's checkers own (with `MMUOracle`'s, which watch its
    /// mappings against the host).
    public static let oracles: [Oracle] = MMUOracle.oracles + [.walkerUseAfterFree, .breakBeforeMake, .vmid, .kvmWarn]

    public let kvm: ModernKVM
    public let engine: SimEngine
    public let hostMM: HostMM
    public let memslots: Memslots
    public let variant: Stage2Variant
    public let code: Stage2Code
    /// This VM's index among the machine's VMs (VTTBR's table pointer).
    public let vmIndex: Int
    /// kvm->arch.mmu.pgt.
    public let pgt: KVMPgtable
    /// The CPUs TLBIs reach, and the VMID allocator all VMs share.
    public let domain: InnerShareableDomain
    public let vmids: ARM64VMIDs
    /// kvm->arch.mmu.vmid (the allocator's form) or kvm->arch.vmid_gen/vmid/vttbr (the legacy form).
    public let vmid: VMIDHandle
    /// memslot_is_logging(): a dirty bitmap per memslot id.
    let logging: AtomicWords
    /// mmu->last_vcpu_ran: per physical CPU, the vcpu of this VM that ran there last (+1).
    let lastRan: AtomicWords
    let stats: AtomicRecords<Stage2Stat>
    @exclusivity(unchecked) public private(set) var vcpus: [ARM64VCPU] = []

    public init(kvm: ModernKVM, variant: Stage2Variant, vmIndex: Int, bitsPerLevel: Int, maxTables: Int,
                freeUnlinked: UnlinkedTableFree, domain: InnerShareableDomain, vmids: ARM64VMIDs) {
        self.kvm = kvm
        engine = kvm.engine
        hostMM = kvm.hostMM
        memslots = kvm.memslots
        self.variant = variant
        code = Stage2Code(variant)
        self.vmIndex = vmIndex
        self.domain = domain
        self.vmids = vmids
        vmid = vmids.makeHandle()
        pgt = KVMPgtable(engine: kvm.engine, rcu: kvm.rcu, mmuLock: kvm.mmuLock, bitsPerLevel: bitsPerLevel, maxTables: maxTables,
                         freeUnlinked: freeUnlinked, reloadAfterTablePre: code.reloadAfterTablePre)
        logging = AtomicWords(count: (kvm.memslots.slots.map(\.id).max() ?? 0) + 1, kernel: true)
        lastRan = AtomicWords(count: domain.cpus.count, kernel: true)
        stats = AtomicRecords(count: 1)
        pgt.tlbi = self
        kvm.setArch(self)
    }

    deinit { logging.free(); lastRan.free(); stats.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): the MMU's state
    /// outside `AtomicWords` as `init` left it: the page table's allocator
    /// (`KVMPgtable.resetAllocator`) and every vcpu loaded nowhere
    /// (`ARM64VCPU.resetForReuse`). Entries, page counts, the VMID, dirty
    /// logging flags, last_vcpu_ran and counters are words the world's
    /// `WorldMemory` restores; the variant's code and the vcpu list are set
    /// at build and never change.
    public func resetForReuse() {
        pgt.resetAllocator()
        for v in vcpus { v.resetForReuse() }
    }

    /// kvm_arch_vcpu_create() for the MMU. Before any actor runs.
    public func createVCPU(_ state: VCPUState) -> ARM64VCPU {
        let v = ARM64VCPU(state: state, mmu: self)
        vcpus.append(v)
        return v
    }

    // MARK: - TLB maintenance (kvm_call_hyp() into hyp/*/tlb.c)

    /// The VMID the TLBI helpers run under: enter_vmid_context() loads this
    /// VM's VTTBR (kvm_get_vttbr(): the VMID as the VM holds it now).
    var currentVMID: Int { vmids.vttbrVMID(vmid) }

    public func tlbFlushVMIDIPA(_ ipa: Int, level: Int) {
        domain.tlbiIPA(vmid: currentVMID, gfns: ipa..<(ipa + 1))
    }

    public func tlbFlushVMIDIPALocal(_ ipa: Int, level: Int) {
        // __kvm_tlb_flush_vmid_ipa_nsh(): this CPU only; the relaxing fault's
        // CPU invalidates its own stricter entry (`ARM64VCPU` does it).
    }

    public func tlbFlushVMIDRange(_ ipas: Range<Int>) {
        // kvm_tlb_flush_vmid_range() without FEAT_TLBIRANGE: __kvm_tlb_flush_vmid().
        domain.tlbiVMID(currentVMID)
    }

    /// kvm_arch_flush_remote_tlbs() (v6.6; kvm_flush_remote_tlbs() before):
    /// __kvm_tlb_flush_vmid(), broadcast; no vcpu kick.
    public func flushRemoteTLBs() {
        count(.remoteFlushes)
        domain.tlbiVMID(currentVMID)
    }

    // MARK: - memslots

    /// memslot_is_logging().
    public func isLogging(_ slot: Memslot) -> Bool { logging.load(slot.id) != 0 }

    /// fault_supports_stage2_huge_mapping(): the memslot maps the whole block
    /// around `hva`, with the gpa and the hva equally aligned.
    func faultSupportsStage2HugeMapping(_ slot: Memslot, hva: Int, pages: Int) -> Bool {
        guard pages > 1 else { return true }
        if (slot.baseGfn % pages) != (slot.userspaceAddr % pages) { return false }
        let lo = hva / pages * pages
        return lo >= slot.userspaceAddr && lo + pages <= slot.userspaceAddr + slot.npages
    }

    // MARK: - counters

    public func count(_ s: Stage2Stat) { stats.add(0, s, 1) }
    public func counter(_ s: Stage2Stat) -> Int { Int(stats.peek(0, s)) }
}

/// Counters of the stage-2 MMU, reported per run.
public enum Stage2Stat: Int, CaseIterable, Sendable {
    case faults, faultRetries, permissionFaults, accessFlagFaults, blockMappings, remoteFlushes
    public var counter: ProtocolCounter {
        switch self {
        case .faults: ProtocolCounter("s2-faults", "stage-2 aborts handled (kvm_handle_guest_abort)")
        case .faultRetries: ProtocolCounter("s2-fault-replays", "faults that returned for the guest to replay (retry, -EAGAIN)")
        case .permissionFaults: ProtocolCounter("s2-perm-faults", "permission faults")
        case .accessFlagFaults: ProtocolCounter("s2-af-faults", "access flag faults (handle_access_fault)")
        case .blockMappings: ProtocolCounter("s2-block-maps", "faults that mapped a block")
        case .remoteFlushes: ProtocolCounter("s2-remote-flushes", "kvm_flush_remote_tlbs() calls")
        }
    }
}

extension Oracle {
    public static let breakBeforeMake = Oracle("break-before-make", "no CPU translates an IPA through a TLB entry to a page other than the one the stage-2 table's valid entry for it maps (a valid entry is changed only by break, TLBI, make)")
    public static let vmid = Oracle("vmid", "a CPU in the guest runs with its VM's current VMID, never VMID 0, and no two CPUs run different VMs under one VMID")
}
