// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore

/// Which `kvm_pgtable_mm_ops` frees a subtree the map walker unlinked
/// (`free_unlinked_table`).
public enum UnlinkedTableFree: String, CaseIterable, Codable, Sendable {
    /// The host's `kvm_s2_mm_ops` (arch/arm64/kvm/mmu.c, v6.3+):
    /// stage2_free_unlinked_table() queues the free with call_rcu().
    case rcu
    /// pKVM at EL2 (arch/arm64/kvm/hyp/nvhe/mem_protect.c,
    /// host_s2_free_unlinked_table()): no RCU at EL2, the subtree goes back to
    /// the pool at once.
    case immediate
}

/// Return codes of the walkers (negative errnos, as the kernel's).
public enum Errno {
    public static let E2BIG: Int32 = 7, EAGAIN: Int32 = 11, ENOMEM: Int32 = 12, EFAULT: Int32 = 14, EINVAL: Int32 = 22
}

/// `enum kvm_pgtable_walk_flags` (kvm_pgtable.h, v6.6).
public struct KVMPgtableWalkFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let leaf = KVMPgtableWalkFlags(rawValue: 1 << 0)              // KVM_PGTABLE_WALK_LEAF
    public static let tablePre = KVMPgtableWalkFlags(rawValue: 1 << 1)          // KVM_PGTABLE_WALK_TABLE_PRE
    public static let tablePost = KVMPgtableWalkFlags(rawValue: 1 << 2)         // KVM_PGTABLE_WALK_TABLE_POST
    /// The tables may be shared with other software walkers: updates by cmpxchg, under RCU.
    public static let shared = KVMPgtableWalkFlags(rawValue: 1 << 3)            // KVM_PGTABLE_WALK_SHARED
    /// Invoked from a fault handler: -EAGAIN ends the walk (the guest replays the fault).
    public static let handleFault = KVMPgtableWalkFlags(rawValue: 1 << 4)       // KVM_PGTABLE_WALK_HANDLE_FAULT
    /// Break-before-make without its TLB invalidation (an unreachable table).
    public static let skipBBMTLBI = KVMPgtableWalkFlags(rawValue: 1 << 5)       // KVM_PGTABLE_WALK_SKIP_BBM_TLBI
}

/// `struct kvm_pgtable_visit_ctx`: the entry a callback is visiting.
public struct KVMPgtableVisitCtx {
    /// The entry's slot in the arena, and the table page it lives in.
    public var ptep: Int
    public var table: Int
    /// READ_ONCE(*ptep) before the callback: a snapshot.
    public var old: KVMPTE
    /// The walk's range and position, in pages (IPA >> PAGE_SHIFT).
    public var start: Int, addr: Int, end: Int
    public var level: Int
    public var flags: KVMPgtableWalkFlags
    /// kvm_pgtable_walk_shared().
    public var isShared: Bool { flags.contains(.shared) }
}

/// `struct kvm_pgtable_walker`: a callback and the visits it wants. The
/// callback returns 0 or a negative errno.
public protocol KVMPgtableWalker {
    var flags: KVMPgtableWalkFlags { get }
    mutating func visit(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx, _ visit: KVMPgtableWalkFlags) -> Int32
}

/// Where a stage-2 page table sends its TLB invalidations: the kvm_call_hyp()
/// TLBI helpers (arch/arm64/kvm/hyp/{nvhe,vhe}/tlb.c), each complete on every
/// CPU of the inner-shareable domain when it returns (its DSB ISH), except the
/// `_nsh` one, which is local.
public protocol Stage2TLBInvalidation: AnyObject, Sendable {
    /// __kvm_tlb_flush_vmid_ipa(mmu, ipa, level): the entries for the `level`
    /// granule at `ipa` (level 0: any level), broadcast.
    func tlbFlushVMIDIPA(_ ipa: Int, level: Int)
    /// __kvm_tlb_flush_vmid_ipa_nsh(): the same on this CPU only.
    func tlbFlushVMIDIPALocal(_ ipa: Int, level: Int)
    /// kvm_tlb_flush_vmid_range() / __kvm_tlb_flush_vmid(): a range, or (without
    /// FEAT_TLBIRANGE) the whole VMID, broadcast.
    func tlbFlushVMIDRange(_ ipas: Range<Int>)
}

/// A stage-2 page table: `struct kvm_pgtable` (arch/arm64/include/asm/kvm_pgtable.h)
/// with the generic walker of arch/arm64/kvm/hyp/pgtable.c (v6.6 text; the
/// walker as it was before a9f0e3d5a089 where `reloadAfterTablePre` is false)
/// and the `kvm_pgtable_mm_ops` of the host (`kvm_s2_mm_ops`) or of pKVM at EL2
/// (`freeUnlinked`).
///
/// Geometry: a 4K-granule table of levels 1 to 3 (start level 1, as a 39-bit
/// IPA space has), each level indexing `bitsPerLevel` bits of the IPA's page
/// number (the kernel's 9; a small world uses 1 or 2). Blocks exist at level 2
/// (`blockPages` pages, the model's PMD).
///
/// Facets: `+BBM` (stage2_try_set_pte(), break-before-make), `+Map` (the map
/// walker), `+Walkers` (unmap, attributes, aging, the unlinked-table free).
///
/// Locking rules (kernel's): walkers with `.shared` run under rcu_read_lock()
/// (kvm_pgtable_walk_begin()) and mmu_lock held for read, and change entries
/// only by cmpxchg; the others need mmu_lock held for write (the caller's, as
/// `mmuLock` asserts) and use plain stores. A table page lives while its
/// page_count() is non-zero: one reference from its allocation plus one per
/// counted entry.
public final class KVMPgtable: @unchecked Sendable {
    public let engine: SimEngine
    public let rcu: any RCUDomain
    public let bitsPerLevel: Int
    /// KVM_PGTABLE_FIRST_LEVEL of this table (the start level) and KVM_PGTABLE_LAST_LEVEL.
    public let startLevel = 1
    public let lastLevel = 3
    public let arena: TableArena
    /// page_count() of each table page (`struct page`'s _refcount).
    let pageCount: AtomicWords
    /// pgt->pgd.
    public let pgd: Int
    /// mm_ops->free_unlinked_table.
    public let freeUnlinked: UnlinkedTableFree
    /// Whether the walker reloads the entry after a pre-order callback (a9f0e3d5a089).
    public let reloadAfterTablePre: Bool
    /// kvm->mmu_lock (lockdep: exclusive walkers assert it held for write).
    public let mmuLock: RWLock
    /// pgt->mmu: where break-before-make sends its TLBIs.
    public unowned(unsafe) var tlbi: Stage2TLBInvalidation!

    public init(engine: SimEngine, rcu: any RCUDomain, mmuLock: RWLock, bitsPerLevel: Int, maxTables: Int,
                freeUnlinked: UnlinkedTableFree, reloadAfterTablePre: Bool) {
        self.engine = engine
        self.rcu = rcu
        self.mmuLock = mmuLock
        self.bitsPerLevel = bitsPerLevel
        self.freeUnlinked = freeUnlinked
        self.reloadAfterTablePre = reloadAfterTablePre
        arena = TableArena(entriesPerTable: 1 << bitsPerLevel, capacity: maxTables, kernel: true, firstTables: 1)
        pageCount = AtomicWords(count: maxTables, kernel: true)
        pgd = 0
        pageCount.store(pgd, 1)
    }

    deinit { arena.free(); pageCount.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): the table
    /// allocator as built, the pgd handed out and nothing else. Entries,
    /// table states and page counts are the world's `WorldMemory` to restore.
    public func resetAllocator() { arena.resetAllocator(firstTables: 1) }

    // MARK: - geometry

    /// PTRS_PER_PTE.
    public var entriesPerTable: Int { 1 << bitsPerLevel }
    /// kvm_granule_size(level), in pages.
    @inline(__always) public func granulePages(_ level: Int) -> Int { 1 << (bitsPerLevel * (lastLevel - level)) }
    /// The level blocks are mapped at (the model's PMD).
    public var blockLevel: Int { lastLevel - 1 }
    /// Pages of a level-2 block.
    public var blockPages: Int { granulePages(blockLevel) }
    /// Pages of IPA space the table maps (1 << ia_bits, in pages).
    public var ipaPages: Int { granulePages(startLevel) << bitsPerLevel }
    /// kvm_pgtable_idx().
    @inline(__always) func index(_ addr: Int, level: Int) -> Int {
        (addr >> (bitsPerLevel * (lastLevel - level))) & (entriesPerTable - 1)
    }
    /// The table an entry slot belongs to.
    @inline(__always) func table(ofSlot s: Int) -> Int { s / entriesPerTable }

    // MARK: - entries

    /// READ_ONCE(*ptep).
    @inline(__always) public func readPTE(_ ptep: Int) -> KVMPTE { KVMPTE(raw: arena.words.load(ptep)) }
    /// WRITE_ONCE(*ptep, new) (kvm_clear_pte() for 0).
    @inline(__always) func writePTE(_ ptep: Int, _ new: KVMPTE) { arena.words.storeRelaxed(ptep, new.raw) }

    // MARK: - mm_ops (kvm_s2_mm_ops; host_s2 mm_ops at EL2)

    /// mm_ops->zalloc_page() from the vcpu's memory cache: a zeroed table with
    /// one reference; nil when exhausted.
    func zallocPage() -> Int? {
        guard let t = arena.alloc(fill: 0) else { return nil }
        pageCount.store(t, 1)
        return t
    }

    /// mm_ops->get_page() of the table page holding `ptep`.
    @inline(__always) func getPage(ofSlot ptep: Int) { pageCount.add(table(ofSlot: ptep), 1) }

    /// mm_ops->put_page(): drop a reference to table `t`; the last one frees it
    /// (kvm_s2_put_page() -> put_page(); hyp_put_page() at EL2), at once.
    func putPage(_ t: Int) {
        let c = pageCount.sub(t, 1)
        if c == UInt64.max {
            engine.report(.kvmWarn, "put_page() of stage-2 table \(t) with no reference (page refcount underflow)")
            pageCount.store(t, 0)
            return
        }
        if c == 0 {
            engine.event("stage-2 table \(t) freed (last reference dropped)")
            arena.reclaim(t)
        }
    }

    /// mm_ops->page_count().
    func pageCountOf(_ t: Int) -> Int { Int(pageCount.load(t)) }

    /// mm_ops->free_unlinked_table(): the host queues
    /// kvm_pgtable_stage2_free_unlinked() after a grace period
    /// (stage2_free_unlinked_table() -> call_rcu()); pKVM frees at once.
    func freeUnlinkedTable(_ t: Int, level: Int) {
        switch freeUnlinked {
        case .rcu:
            arena.markRetired(t)
            engine.event("stage2_free_unlinked_table: call_rcu() for table \(t)")
            rcu.callRCU { [self] in
                engine.event("rcu: stage2_free_unlinked_table_rcu_cb frees table \(t)")
                kvmPgtableStage2FreeUnlinked(t, level: level)
            }
        case .immediate:
            engine.event("host_s2_free_unlinked_table: table \(t) freed now")
            kvmPgtableStage2FreeUnlinked(t, level: level)
        }
    }

    // MARK: - the walker (hyp/pgtable.c)

    /// kvm_pgtable_walk(): the walk of `[addr, addr + size)` (pages), inside
    /// kvm_pgtable_walk_begin()/end(): rcu_read_lock() for a shared walk on
    /// the host. Returns 0 or the first error that stopped it.
    @discardableResult
    public func walk<W: KVMPgtableWalker>(_ addr: Int, _ size: Int, _ walker: inout W) -> Int32 {
        let shared = walker.flags.contains(.shared)
        if shared { rcu.readLock() }
        var data = WalkData(start: addr, addr: addr, end: addr + size)
        let r = walkTable(&data, &walker, table: pgd, generation: arena.generation(pgd), level: startLevel)
        if shared { rcu.readUnlock() }
        return r
    }

    struct WalkData { let start: Int; var addr: Int; let end: Int }

    /// __kvm_pgtable_walk(): the entries of one table from the walk's address on.
    func walkTable<W: KVMPgtableWalker>(_ data: inout WalkData, _ walker: inout W, table: Int, generation: UInt64, level: Int) -> Int32 {
        var idx = index(data.addr, level: level)
        while idx < entriesPerTable {
            if data.addr >= data.end { break }
            let r = visit(&data, &walker, ptep: arena.slot(table, idx), table: table, generation: generation, level: level)
            if r != 0 { return r }
            idx += 1
        }
        return 0
    }

    /// kvm_pgtable_walk_continue(): -EAGAIN ends only a fault handler's walk.
    @inline(__always) func walkContinue(_ flags: KVMPgtableWalkFlags, _ r: Int32) -> Bool {
        if r == -Errno.EAGAIN { return !flags.contains(.handleFault) }
        return r == 0
    }

    /// __kvm_pgtable_visit(): read the entry once, run the pre-order callback
    /// of a table or the leaf callback of anything else, reload the entry
    /// (after a leaf callback always; after a pre-order one since a9f0e3d5a089),
    /// then step over a leaf or descend into the table the entry now links.
    func visit<W: KVMPgtableWalker>(_ data: inout WalkData, _ walker: inout W, ptep: Int, table: Int, generation: UInt64,
                                   level: Int) -> Int32 {
        let flags = walker.flags
        var ctx = KVMPgtableVisitCtx(ptep: ptep, table: table, old: readPTE(ptep), start: data.start, addr: data.addr,
                                     end: data.end, level: level, flags: flags)
        // The table page the walker is in, checked after the read: a freed page
        // is memory it must not read (its entries are poison, or another table's).
        guard arena.isValid(table, generation: generation) else {
            engine.report(.walkerUseAfterFree, "a kvm_pgtable walker at level \(level), IPA page \(data.addr), read stage-2 table \(table) after it was freed\(freeUnlinked == .immediate ? " (freed at once, as pKVM at EL2 frees)" : "")")
            return -Errno.EFAULT
        }
        var ret: Int32 = 0
        var reload = false
        var isTable = ctx.old.isTable(level: level, lastLevel: lastLevel)
        // The generation of the table the snapshot links, as it was when read
        // (a table freed and handed out again since is still "freed" to this walker).
        var childGen = isTable ? arena.generation(ctx.old.pfn) : 0
        if isTable && flags.contains(.tablePre) {
            ret = walker.visit(self, ctx, .tablePre)
            reload = reloadAfterTablePre
        }
        if !isTable && flags.contains(.leaf) {
            ret = walker.visit(self, ctx, .leaf)
            reload = true
        }
        if reload {
            ctx.old = readPTE(ptep)
            isTable = ctx.old.isTable(level: level, lastLevel: lastLevel)
            if isTable { childGen = arena.generation(ctx.old.pfn) }
        }
        if !walkContinue(flags, ret) { return ret }
        if !isTable {
            let g = granulePages(level)
            data.addr = data.addr / g * g + g
            return 0
        }
        // kvm_pte_follow(ctx.old): the child the (possibly stale) snapshot links.
        ret = walkTable(&data, &walker, table: ctx.old.pfn, generation: childGen, level: level + 1)
        if !walkContinue(flags, ret) { return ret }
        if flags.contains(.tablePost) { ret = walker.visit(self, ctx, .tablePost) }
        return walkContinue(flags, ret) ? 0 : ret
    }
}

extension Oracle {
    public static let walkerUseAfterFree = Oracle("walker-use-after-free", "no kvm_pgtable walker reads a stage-2 table page after it was freed (the host defers the free by RCU; pKVM frees at once)")
}
