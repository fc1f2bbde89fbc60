// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// A vcpu's x86 MMU state (`vcpu->arch.mmu->root`, v6.10-era mmu.c) and the
/// CPU it runs on in guest mode: its TLB (tagged by root, as EPTP-tagged
/// entries are) and its page walker, which sets Accessed and Dirty bits in
/// SPTEs itself, with atomic read-modify-writes, also through a leaf table it
/// reached through TLB-cached upper levels ("A/D assists": the reason
/// handle_removed_pt() writes children of an unlinked table atomically).
///
/// Facets: `+Guest` (vcpu_enter_guest()'s requests, the root load, one guest
/// access with its EPT-violation exits and faults).
///
/// Locking: the root and the TLB belong to this vcpu's thread (KVM changes
/// them on this vcpu only, outside guest mode; other CPUs ask through
/// requests). The CPU's walk takes no lock and is no RCU reader: KVM keeps a
/// table alive for it by flushing TLBs (which waits for guest mode to be left)
/// between unlinking the table and freeing it.
public final class X86VCPU: @unchecked Sendable {
    /// KVM_REQ_MMU_FREE_OBSOLETE_ROOTS (KVM_REQ_TLB_FLUSH is `VCPUState.reqTLBFlush`).
    public static let reqMMUFreeObsoleteRoots: UInt64 = 1 << 1

    public let state: VCPUState
    unowned(unsafe) let mmu: TDPMMU
    /// vcpu->arch.mmu->root.hpa: the root table, -1 for INVALID_PAGE. This
    /// vcpu holds a reference to it.
    @exclusivity(unchecked) public internal(set) var root = -1
    /// The vcpu's address space: 1 while it is in SMM (role.smm), else 0.
    @exclusivity(unchecked) public internal(set) var asID = 0

    /// One TLB entry per gfn (a TLB of unlimited size: eviction would only hide
    /// stale entries). `root` is the tag (+1; 0 = empty).
    enum TLBField: Int, CaseIterable {
        case root, pfn, writable, dirty, executable
        /// The SPTE it was filled from, its level, and the leaf table with its
        /// generation (the paging-structure cache the CPU's A/D assists use).
        case sptep, level, table, tableGen
        /// The zap clock (TDPMMUOracle) and the aging clock (MMUOracle) at the fill.
        case filledAt, agingStamp
    }
    let tlb: AtomicRecords<TLBField>
    /// The PML buffer: gfns the CPU logged when it set a Dirty bit, moved into
    /// the dirty bitmap at VM exit (vmx_flush_pml_buffer()). A flag per gfn.
    let pml: AtomicWords
    /// Whether the CPU's last EPT violation was on a present SPTE that did not
    /// allow the access (handle_ept_violation(): PFERR_PRESENT_MASK from the
    /// exit qualification's permission bits), so fast_page_fault() may fix it.
    /// Only the vcpu's own thread touches it.
    var violationOnPresentSPTE = false
    /// Entries logged since the last flush (the buffer's fill level, as
    /// GUEST_PML_INDEX counts it): an exit with an empty buffer skips the scan.
    /// Only the vcpu's own thread touches it.
    private var pmlEntries = 0

    init(state: VCPUState, mmu: TDPMMU, gfns: Int) {
        self.state = state
        self.mmu = mmu
        tlb = AtomicRecords(count: max(gfns, 1))
        pml = AtomicWords(count: max(gfns, 1))
    }

    deinit { tlb.free(); pml.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): the vcpu as
    /// `TDPMMU.createVCPU` made it, no root loaded (INVALID_PAGE), address
    /// space 0, no EPT violation seen, an empty PML buffer. The TLB and PML
    /// words are the world's `WorldMemory` to restore.
    func resetForReuse() {
        root = -1
        asID = 0
        violationOnPresentSPTE = false
        pmlEntries = 0
    }

    /// The CPU set the Dirty bit of `gfn`'s SPTE: with PML on (a logged slot),
    /// it logs the gfn in the buffer.
    func pmlLog(_ gfn: Int) {
        guard mmu.pml, let slot = mmu.memslots.slot(forGfn: gfn, asID: asID), mmu.dirtyLog.isLogging(slot) else { return }
        pml.store(gfn, 1)
        pmlEntries += 1
    }

    /// vmx_flush_pml_buffer() at VM exit: kvm_vcpu_mark_page_dirty() of each logged gfn.
    func flushPML() {
        if pmlEntries == 0 { return }
        pmlEntries = 0
        // The bit is set before the entry leaves the buffer (the kernel resets the
        // buffer's index after it has marked every entry).
        for g in 0..<pml.count where pml.load(g) != 0 {
            if let slot = mmu.memslots.slot(forGfn: g, asID: 0), mmu.dirtyLog.isLogging(slot) { mmu.dirtyLog.markPageDirtyInSlot(g) }
            pml.store(g, 0)
        }
    }

    /// Whether the PML buffer holds `gfn` (the dirty-log oracle's view).
    func pmlHolds(_ gfn: Int) -> Bool { gfn < pml.count && pml.peek(gfn) != 0 }

    public var id: Int { state.id }

    // MARK: - TLB

    /// kvm_vcpu_flush_tlb_all() (the CPU's INVEPT of every context).
    func flushTLBAll() {
        for g in 0..<tlb.count where tlb.load(g, .root) != 0 { tlb.store(g, .root, 0) }
    }

    /// kvm_vcpu_flush_tlb_current(): the entries tagged with the current root.
    func flushTLBCurrent() {
        let tag = UInt64(root + 1)
        for g in 0..<tlb.count where tlb.load(g, .root) == tag { tlb.store(g, .root, 0) }
    }

    /// This vcpu's TLB entry for `gfn` (reports).
    func describeTLB(_ gfn: Int) -> String {
        guard tlb.peek(gfn, .root) != 0 else { return "none" }
        return "pfn \(tlb.peek(gfn, .pfn)) root \(tlb.peek(gfn, .root) - 1)\(tlb.peek(gfn, .writable) != 0 ? " W" : "")\(tlb.peek(gfn, .dirty) != 0 ? " D" : "") (vcpu root \(root))"
    }

    /// Whether this vcpu's TLB holds an entry for `gfn` (tests, oracles).
    public func tlbMaps(_ gfn: Int) -> Int? {
        tlb.peek(gfn, .root) != 0 ? Int(tlb.peek(gfn, .pfn)) : nil
    }
}
