// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore

/// The x86 TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c with the parts of mmu.c,
/// spte.h and tdp_iter.[ch] it stands on; text read: torvalds/linux at
/// 0089c055b560 for tdp_mmu.c and 56ea38e436ea for mmu.c, both v6.10-era):
/// the VM's page-table pages (`struct kvm_mmu_page`), its roots, and the
/// functions that change SPTEs. The variant (`TDPMMUVariant`) says where the
/// code is that of an older kernel, one race at a time.
///
/// Facets: `+SetSPTE` (tdp_mmu_set_spte_atomic(), tdp_mmu_set_spte(),
/// handle_changed_spte(), handle_removed_pt(), the iterator's yield),
/// `+Roots` (roots, their references, the fast zap), `+Zap` (the notifier's
/// and kvm_zap_gfn_range()'s zaps, kvm_tdp_mmu_zap_sp()), `+Fault` (the fault
/// path), `+Age`, `+DirtyLog`, `+HugePages` (hugepage adjust, eager and
/// on-fault splits), `+NXRecovery`.
///
/// Locking rules (each function asserts its own, as the kernel's lockdep does):
/// - SPTEs change with `kvm->mmu_lock` held for write (plain stores, or an xchg
///   for a leaf with volatile bits), or held for read with a cmpxchg
///   (`tdp_mmu_set_spte_atomic`) that may fail and send the caller back; the
///   CPU (A/D bits) and fast_page_fault() (the W bit) change SPTEs with no lock.
/// - Page-table pages are walked under `rcu_read_lock()` and freed through
///   `call_rcu()`; the CPU's own walks are protected by the TLB flush that
///   comes before the free.
/// - The roots list and the possible-NX-huge-page list change under
///   `tdp_mmu_pages_lock`; a root's `role.invalid` only with mmu_lock held for write.
public final class TDPMMU: KVMGFNRangeArch, @unchecked Sendable {
    /// The oracles the TDP MMU's checkers own (with `MMUOracle`'s, which watch
    /// its mappings against the host, and the RCU table checks).
    public static let oracles: [Oracle] = MMUOracle.oracles + TDPMMUOracle.oracles + [.shadowPageLists, .rcuUseAfterFree, .kvmWarn]

    // Strong references (a method borrows them without reference counting).
    public let kvm: ModernKVM
    public let engine: SimEngine
    public let rcu: any RCUDomain
    public let hostMM: HostMM
    public let memslots: Memslots
    public let variant: TDPMMUVariant
    /// The forms of the code the variant runs (one field per race).
    public var code: TDPMMUCode
    /// The tables' shape (bits of gfn per level, entries per table).
    public let geometry: TDPGeometry
    /// PT64_ROOT_4LEVEL.
    public let rootLevel = 4
    /// The page-table pages: `sp->spt` of every `struct kvm_mmu_page`.
    public let arena: TableArena
    /// The rest of each `struct kvm_mmu_page`, by table.
    enum SPField: Int, CaseIterable {
        /// role.level; role.invalid; role.smm (the address space: kvm_mmu_page_as_id()).
        case level, invalid, asID
        /// sp->gfn; sp->ptep (the parent SPTE's slot + 1, 0 for a root).
        case gfn, ptep
        /// tdp_mmu_root_count; tdp_mmu_scheduled_root_to_zap.
        case rootCount, scheduledRootToZap
        /// nx_huge_page_disallowed; on kvm->arch.possible_nx_huge_pages.
        case nxHugePageDisallowed, nxTracked
        /// The next root on kvm->arch.tdp_mmu_roots (+1; 0 = end).
        case nextRoot
    }
    let sp: AtomicRecords<SPField>
    /// kvm->arch.tdp_mmu_roots: the first root (+1; 0 = empty). An RCU list:
    /// readers walk it under mmu_lock (read or write) and rcu_read_lock().
    let rootsHead: AtomicWords
    /// kvm->arch.tdp_mmu_pages_lock.
    public let pagesLock: SpinLock
    /// kvm->arch.possible_nx_huge_pages, oldest first (under `pagesLock`).
    @exclusivity(unchecked) var possibleNXHugePages: [Int] = []
    /// The checker of the TDP MMU's own invariants.
    public let oracle: TDPMMUOracle
    /// The memslots' dirty logging (bitmaps, KVM_MEM_LOG_DIRTY_PAGES).
    public let dirtyLog: TDPDirtyLog
    /// The nx_huge_pages module parameter (the iTLB multihit mitigation).
    let nxHugePagesEnabled = AtomicWords(count: 1, kernel: true)
    /// The shadow MMU's pages (nested TDP), which make_mmu_pages_available() recycles.
    @exclusivity(unchecked) var shadowPages: ShadowMMUPages!
    /// kvm->stat / vcpu->stat counters the scenarios report.
    let stats: AtomicRecords<TDPStat>
    /// The vcpus' arch state (vcpu->arch.mmu, the TLB), by vcpu id.
    @exclusivity(unchecked) public private(set) var vcpus: [X86VCPU] = []

    public init(kvm: ModernKVM, variant: TDPMMUVariant, bitsPerLevel: Int, maxTables: Int) {
        self.kvm = kvm
        engine = kvm.engine
        rcu = kvm.rcu
        hostMM = kvm.hostMM
        memslots = kvm.memslots
        self.variant = variant
        code = TDPMMUCode(variant)
        geometry = TDPGeometry(bitsPerLevel: bitsPerLevel)
        arena = TableArena(entriesPerTable: 1 << bitsPerLevel, capacity: maxTables, kernel: true)
        sp = AtomicRecords(count: maxTables, kernel: true)
        rootsHead = AtomicWords(count: 1, kernel: true)
        pagesLock = SpinLock("spin_lock(&kvm->arch.tdp_mmu_pages_lock)", engine: kvm.engine)
        stats = AtomicRecords(count: 1)
        oracle = TDPMMUOracle(engine: kvm.engine, hostMM: kvm.hostMM, memslots: kvm.memslots)
        dirtyLog = TDPDirtyLog(slots: (kvm.memslots.slots.map(\.id).max() ?? 0) + 1, gfns: kvm.memslots.maxGfn)
        possibleNXHugePages.reserveCapacity(8)
        oracle.prepare(slots: maxTables << bitsPerLevel)
        shadowPages = ShadowMMUPages(mmu: self, nMax: 3)
        kvm.setArch(self)
    }

    deinit { arena.free(); sp.free(); rootsHead.free(); stats.free(); nxHugePagesEnabled.free() }

    /// Sets the nx_huge_pages module parameter's value (before actors run, or
    /// by set_nx_huge_pages() with every VM's slots_lock held).
    public func setNXHugePages(_ on: Bool) { nxHugePagesEnabled.store(0, on ? 1 : 0) }

    /// The eager_page_split module parameter (default on): huge pages are split
    /// when dirty logging starts. Set before actors run.
    public var eagerPageSplit = true

    /// Whether the CPU logs dirty pages itself (`kvm_x86_ops.cpu_dirty_log_size`
    /// non-zero: Intel's PML with kvm_intel.enable_pml=1, the default). Without
    /// it (AMD, or enable_pml=0) dirty logging write-protects: turning it on
    /// removes write access from the slot's 4K leaves too, a harvest clears
    /// the Writable bits of the pages it took instead of their Dirty bits, and
    /// every first write after that goes through fast_page_fault(), which
    /// restores the bit and logs the page. Set before actors run.
    public var pml = true

    /// kvm_arch_vcpu_create() for the MMU: the vcpu's arch state. Before any actor runs.
    public func createVCPU(_ state: VCPUState) -> X86VCPU {
        let v = X86VCPU(state: state, mmu: self, gfns: memslots.maxGfn)
        vcpus.append(v)
        return v
    }

    // MARK: - geometry

    /// Bits of gfn each level indexes (the kernel's 9; a small world uses 1 or 2).
    @inline(__always) public var bitsPerLevel: Int { geometry.bitsPerLevel }
    /// SPTE_ENT_PER_PAGE.
    @inline(__always) public var entriesPerTable: Int { geometry.entriesPerTable }
    /// KVM_PAGES_PER_HPAGE(), SPTE_INDEX(), gfn_round_for_level(): `TDPGeometry`'s.
    @inline(__always) public func pagesPerSPTE(level: Int) -> Int { geometry.pagesPerSPTE(level: level) }
    @inline(__always) func spteIndex(_ gfn: Int, level: Int) -> Int { geometry.spteIndex(gfn, level: level) }
    @inline(__always) func roundForLevel(_ gfn: Int, level: Int) -> Int { geometry.roundForLevel(gfn, level: level) }
    /// Gfns a root maps: tdp_mmu_max_gfn_exclusive().
    public var maxGfnExclusive: Int { 1 << (rootLevel * bitsPerLevel) }

    // MARK: - SPTE memory (tdp_iter.h)

    /// The table an SPTE slot belongs to (sptep_to_sp()).
    @inline(__always) func table(ofSlot s: Int) -> Int { s / entriesPerTable }

    /// kvm_tdp_mmu_read_spte(): READ_ONCE(*sptep).
    @inline(__always) public func readSPTE(_ sptep: Int) -> SPTE { SPTE(raw: arena.words.load(sptep)) }

    /// kvm_tdp_mmu_write_spte_atomic(): xchg(sptep, new).
    @inline(__always) @discardableResult
    func writeSPTEAtomic(_ sptep: Int, _ new: SPTE) -> SPTE { SPTE(raw: arena.words.exchange(sptep, new.raw)) }

    /// __kvm_tdp_mmu_write_spte(): WRITE_ONCE(*sptep, new).
    @inline(__always) func writeSPTERaw(_ sptep: Int, _ new: SPTE) { arena.words.store(sptep, new.raw) }

    /// kvm_tdp_mmu_spte_need_atomic_write(): a present leaf with volatile bits.
    @inline(__always) func spteNeedsAtomicWrite(_ old: SPTE, level: Int) -> Bool {
        old.isShadowPresent && old.isLast(level: level) && old.hasVolatileBits
    }

    /// kvm_tdp_mmu_write_spte() (tdp_iter.h): an xchg when the SPTE has bits the
    /// CPU or fast_page_fault() may set without mmu_lock (ba3a6120a4e7), a plain
    /// store otherwise; returns the value replaced. Before ba3a6120a4e7 it was
    /// always the plain store, and returned nothing: the caller's snapshot was
    /// taken as the old value.
    @discardableResult
    func writeSPTE(_ sptep: Int, old: SPTE, new: SPTE, level: Int) -> SPTE {
        if code.volatileSPTEWrites == .xchgIfVolatile && spteNeedsAtomicWrite(old, level: level) {
            return writeSPTEAtomic(sptep, new)
        }
        oracle.plainSPTEWrite(sptep: sptep, believed: old, new: new, level: level, words: arena.words)
        writeSPTERaw(sptep, new)
        return old
    }

    /// tdp_mmu_clear_spte_bits(): clear `mask` with a LOCK AND when the SPTE
    /// has volatile bits (v6.4+), else a plain store; returns the value replaced.
    @discardableResult
    func clearSPTEBits(_ sptep: Int, old: SPTE, mask: UInt64, level: Int) -> SPTE {
        if code.volatileSPTEWrites == .xchgIfVolatile && spteNeedsAtomicWrite(old, level: level) {
            // atomic64_fetch_and(~mask, sptep)
            while true {
                let cur = arena.words.load(sptep)
                if arena.words.cas(sptep, cur, cur & ~mask) { return SPTE(raw: cur) }
            }
        }
        let new = SPTE(raw: old.raw & ~mask)
        oracle.plainSPTEWrite(sptep: sptep, believed: old, new: new, level: level, words: arena.words)
        writeSPTERaw(sptep, new)
        return old
    }

    // MARK: - kvm_mmu_page

    func spLevel(_ t: Int) -> Int { Int(sp.load(t, .level)) }
    func spGfn(_ t: Int) -> Int { Int(sp.load(t, .gfn)) }
    func spAsID(_ t: Int) -> Int { Int(sp.load(t, .asID)) }
    /// role.invalid of a root.
    public func isInvalid(_ t: Int) -> Bool { sp.load(t, .invalid) != 0 }
    /// tdp_mmu_root_count.
    public func rootCount(_ t: Int) -> Int { Int(sp.load(t, .rootCount)) }

    /// tdp_mmu_alloc_sp() + tdp_mmu_init_sp(): a page-table page for level
    /// `level` mapping from `gfn`, linked (once installed) from `ptep` (nil: a
    /// root). The kernel takes it from the vcpu's memory cache, topped up before
    /// mmu_lock; nil when the arena is exhausted.
    func allocSP(level: Int, gfn: Int, asID: Int, ptep: Int?) -> Int? {
        guard let t = arena.alloc(fill: SPTE.nonPresent.raw) else { return nil }
        sp.store(t, .level, UInt64(level))
        sp.store(t, .gfn, UInt64(gfn))
        sp.store(t, .asID, UInt64(asID))
        sp.store(t, .ptep, ptep.map { UInt64($0 + 1) } ?? 0)
        sp.store(t, .invalid, 0)
        sp.store(t, .rootCount, 0)
        sp.store(t, .scheduledRootToZap, 0)
        sp.store(t, .nxHugePageDisallowed, 0)
        sp.store(t, .nxTracked, 0)
        sp.store(t, .nextRoot, 0)
        return t
    }

    /// tdp_mmu_free_sp(): a page never linked (a lost cmpxchg), or one whose
    /// grace period ended.
    func freeSP(_ t: Int) { arena.reclaim(t) }

    /// call_rcu(&sp->rcu_head, tdp_mmu_free_sp_rcu_callback): the page is freed
    /// after a grace period.
    func freeSPAfterGracePeriod(_ t: Int) {
        arena.markRetired(t)
        rcu.callRCU { [self] in
            engine.event("rcu: tdp_mmu_free_sp_rcu_callback frees table \(t)")
            freeSP(t)
        }
    }

    // MARK: - counters

    public func count(_ s: TDPStat) { stats.add(0, s, 1) }
    public func counter(_ s: TDPStat) -> Int { Int(stats.peek(0, s)) }
}

/// Counters of the TDP MMU (kvm->stat and vcpu->stat in spirit), reported per run.
public enum TDPStat: Int, CaseIterable, Sendable {
    case faults, faultRetries, fastFaults, remoteFlushes, rootsAllocated, tablesFreed, zapYields, nxRecovered, harvests
    public var counter: ProtocolCounter {
        switch self {
        case .faults: ProtocolCounter("tdp-faults", "EPT violations handled (kvm_tdp_page_fault)")
        case .faultRetries: ProtocolCounter("tdp-fault-retries", "faults sent back to the guest (RET_PF_RETRY)")
        case .fastFaults: ProtocolCounter("tdp-fast-faults", "faults the lockless fast path handled")
        case .remoteFlushes: ProtocolCounter("tdp-remote-flushes", "kvm_flush_remote_tlbs() calls")
        case .rootsAllocated: ProtocolCounter("tdp-roots", "roots allocated")
        case .tablesFreed: ProtocolCounter("tdp-tables-freed", "page-table pages removed (handle_removed_pt)")
        case .zapYields: ProtocolCounter("tdp-yields", "walks that dropped mmu_lock (tdp_mmu_iter_cond_resched)")
        case .nxRecovered: ProtocolCounter("tdp-nx-recovered", "shadow pages zapped by NX huge page recovery")
        case .harvests: ProtocolCounter("tdp-dirty-harvests", "dirty log harvests (KVM_GET_DIRTY_LOG)")
        }
    }
}
