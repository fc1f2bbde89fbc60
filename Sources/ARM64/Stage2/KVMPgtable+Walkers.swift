// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The other stage-2 walkers of hyp/pgtable.c (v6.6 text; the unmap walker's
/// table TLBI as v6.9 has it, f62d4c3eb687/36e008323926): unmap, the
/// attribute walker (relax_perms, mkyoung, wrprotect), aging, and the free of
/// an unlinked subtree.
extension KVMPgtable {
    /// kvm_pgtable_stage2_unmap(): clear every entry of the range (exclusive:
    /// mmu_lock held for write), invalidating each valid one's TLB entries, and
    /// free each table left empty (at once: no shared walker can be inside it).
    /// Without FEAT_TLBIRANGE + FWB no invalidation is deferred.
    public func stage2Unmap(_ addr: Int, _ size: Int) {
        assertWalkLock([], "kvm_pgtable_stage2_unmap()")
        var w = Stage2UnmapWalker()
        walk(addr, size, &w)
    }

    /// stage2_update_leaf_attrs(): set and clear attribute bits of the leaves
    /// of a range in place (no break-before-make); the last leaf visited and its level.
    func updateLeafAttrs(_ addr: Int, _ size: Int, set: UInt64, clear: UInt64, flags: KVMPgtableWalkFlags)
        -> (ret: Int32, pte: KVMPTE, level: Int) {
        var w = Stage2AttrWalker(flags: flags.union(.leaf), set: set, clear: clear)
        let r = walk(addr, size, &w)
        return (r, w.pte, w.level)
    }

    /// kvm_pgtable_stage2_relax_perms(): add permissions to the leaf at `addr`
    /// (a permission fault's fix, mmu_lock held for read); on success a local
    /// TLBI: other CPUs holding the stricter entry only take a spurious fault.
    public func stage2RelaxPerms(_ addr: Int, writable: Bool, executable: Bool) -> Int32 {
        assertWalkLock(.shared, "kvm_pgtable_stage2_relax_perms()")
        let set = KVMPTE.s2apR | (writable ? KVMPTE.s2apW : 0)
        let r = updateLeafAttrs(addr, 1, set: set, clear: executable ? KVMPTE.xn : 0, flags: [.handleFault, .shared])
        if r.ret == 0 { tlbi.tlbFlushVMIDIPALocal(addr, level: r.level) }   // __kvm_tlb_flush_vmid_ipa_nsh
        return r.ret
    }

    /// kvm_pgtable_stage2_mkyoung(): set the Access flag of the leaf at `addr`
    /// (an access-flag fault's fix, mmu_lock held for read); the leaf as it was.
    public func stage2Mkyoung(_ addr: Int) -> KVMPTE {
        assertWalkLock(.shared, "kvm_pgtable_stage2_mkyoung()")
        let r = updateLeafAttrs(addr, 1, set: KVMPTE.af, clear: 0, flags: [.handleFault, .shared])
        return r.ret == 0 ? r.pte : .empty
    }

    /// kvm_pgtable_stage2_wrprotect(): clear write permission over a range
    /// (mmu_lock held for write; the caller flushes TLBs).
    public func stage2Wrprotect(_ addr: Int, _ size: Int) {
        assertWalkLock([], "kvm_pgtable_stage2_wrprotect()")
        _ = updateLeafAttrs(addr, size, set: 0, clear: KVMPTE.s2apW, flags: [])
    }

    /// kvm_pgtable_stage2_test_clear_young(): whether a leaf of the range had
    /// its Access flag set, clearing it when `mkold` (mmu_lock held for write;
    /// no TLBI here: the notifier's clear_flush_young flushes).
    public func stage2TestClearYoung(_ addr: Int, _ size: Int, mkold: Bool) -> Bool {
        assertWalkLock([], "kvm_pgtable_stage2_test_clear_young()")
        var w = Stage2AgeWalker(mkold: mkold)
        if walk(addr, size, &w) != 0 { engine.report(.kvmWarn, "WARN_ON(kvm_pgtable_walk()) in kvm_pgtable_stage2_test_clear_young()") }
        return w.young
    }

    /// kvm_pgtable_stage2_free_unlinked(): drop every reference the unlinked
    /// subtree at `table` (once linked at `level`) holds, freeing its tables,
    /// then the table itself. Runs on an unreachable subtree: no lock.
    func kvmPgtableStage2FreeUnlinked(_ table: Int, level: Int) {
        var w = Stage2FreeWalker()
        var data = WalkData(start: 0, addr: 0, end: granulePages(level))
        if walkTable(&data, &w, table: table, generation: arena.generation(table), level: level + 1) != 0 {
            engine.report(.kvmWarn, "WARN_ON(__kvm_pgtable_walk()) freeing unlinked table \(table)")
        }
        if pageCountOf(table) != 1 {
            engine.report(.kvmWarn, "WARN_ON(mm_ops->page_count(pgtable) != 1): unlinked table \(table) has \(pageCountOf(table)) references")
        }
        putPage(table)
    }
}

/// stage2_unmap_walker() (LEAF | TABLE_POST, exclusive).
struct Stage2UnmapWalker: KVMPgtableWalker {
    let flags: KVMPgtableWalkFlags = [.leaf, .tablePost]

    mutating func visit(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx, _ visit: KVMPgtableWalkFlags) -> Int32 {
        if !ctx.old.isValid {
            if ctx.old.isCounted {
                pgt.writePTE(ctx.ptep, .empty)                      // kvm_clear_pte()
                pgt.putPage(ctx.table)
            }
            return 0
        }
        var childp: Int? = nil
        let isTable = ctx.old.isTable(level: ctx.level, lastLevel: pgt.lastLevel)
        if isTable {
            // Only a table left empty by this walk goes (its own reference is the last).
            if pgt.pageCountOf(ctx.old.pfn) != 1 { return 0 }
            childp = ctx.old.pfn
        }
        // stage2_unmap_put_pte()
        pgt.writePTE(ctx.ptep, .empty)
        pgt.tlbi.tlbFlushVMIDIPA(ctx.addr, level: isTable ? 0 : ctx.level)
        pgt.putPage(ctx.table)
        if let childp { pgt.putPage(childp) }
        return 0
    }
}

/// stage2_attr_walker() with its `struct stage2_attr_data`.
struct Stage2AttrWalker: KVMPgtableWalker {
    let flags: KVMPgtableWalkFlags
    let set: UInt64
    let clear: UInt64
    /// The last leaf visited (before the change) and its level.
    var pte = KVMPTE.empty
    var level = 0

    mutating func visit(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx, _ visit: KVMPgtableWalkFlags) -> Int32 {
        guard ctx.old.isValid else { return -Errno.EAGAIN }
        level = ctx.level
        pte = ctx.old
        let new = KVMPTE(raw: (ctx.old.raw & ~clear) | set)
        if new != ctx.old && !pgt.trySetPTE(ctx, new) { return -Errno.EAGAIN }
        return 0
    }
}

/// stage2_age_walker() (LEAF, exclusive: mmu_lock held for write).
struct Stage2AgeWalker: KVMPgtableWalker {
    let flags: KVMPgtableWalkFlags = .leaf
    let mkold: Bool
    var young = false

    mutating func visit(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx, _ visit: KVMPgtableWalkFlags) -> Int32 {
        let new = KVMPTE(raw: ctx.old.raw & ~KVMPTE.af)
        if !ctx.old.isValid || new == ctx.old { return 0 }
        young = true
        if mkold && !pgt.trySetPTE(ctx, new) { return -Errno.EAGAIN }
        return 0
    }
}

/// stage2_free_walker() (LEAF | TABLE_POST over an unlinked subtree).
struct Stage2FreeWalker: KVMPgtableWalker {
    let flags: KVMPgtableWalkFlags = [.leaf, .tablePost]

    mutating func visit(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx, _ visit: KVMPgtableWalkFlags) -> Int32 {
        guard ctx.old.isCounted else { return 0 }
        pgt.putPage(ctx.table)
        if ctx.old.isTable(level: ctx.level, lastLevel: pgt.lastLevel) { pgt.putPage(ctx.old.pfn) }
        return 0
    }
}
