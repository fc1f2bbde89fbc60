// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Break-before-make and the stage-2 map walker (hyp/pgtable.c, v6.6 text
/// with the v6.9 ALIGN_DOWN of the table TLBI, 4c36a156).
extension KVMPgtable {
    /// stage2_try_set_pte(): a plain store for an exclusive walker (mmu_lock
    /// held for write), a cmpxchg against the snapshot for a shared one.
    func trySetPTE(_ ctx: KVMPgtableVisitCtx, _ new: KVMPTE) -> Bool {
        guard ctx.isShared else { writePTE(ctx.ptep, new); return true }
        return arena.words.cas(ctx.ptep, ctx.old.raw, new.raw)
    }

    /// stage2_try_break_pte(): the "break": lock the entry (a cmpxchg to
    /// KVM_INVALID_PTE_LOCKED when shared), invalidate what the TLBs may hold
    /// for it (the table's range, or the leaf's IPA; complete on every CPU when
    /// the call returns), and drop the entry's reference on its table page.
    /// False: another walker owns the entry, or it changed since the snapshot.
    func tryBreakPTE(_ ctx: KVMPgtableVisitCtx) -> Bool {
        if ctx.old.isLocked {
            // Should never occur if this walker has exclusive access to the page tables.
            if !ctx.isShared { engine.report(.kvmWarn, "WARN_ON(!kvm_pgtable_walk_shared(ctx)): an exclusive walker found a LOCKED stage-2 entry at IPA page \(ctx.addr)") }
            return false
        }
        guard trySetPTE(ctx, .locked) else { return false }
        engine.point("stage2_try_break_pte:locked")
        if !ctx.flags.contains(.skipBBMTLBI) {
            if ctx.old.isTable(level: ctx.level, lastLevel: lastLevel) {
                let g = granulePages(ctx.level)
                let a = ctx.addr / g * g                            // ALIGN_DOWN (4c36a156)
                tlbi.tlbFlushVMIDRange(a..<(a + g))                 // kvm_tlb_flush_vmid_range()
            } else if ctx.old.isValid {
                tlbi.tlbFlushVMIDIPA(ctx.addr, level: ctx.level)    // __kvm_tlb_flush_vmid_ipa
            }
        }
        if ctx.old.isCounted { putPage(ctx.table) }
        return true
    }

    /// stage2_make_pte(): the "make": publish the new entry with a release
    /// store (its child table, if any, fully built before) over the LOCKED one.
    func makePTE(_ ctx: KVMPgtableVisitCtx, _ new: KVMPTE) {
        if !readPTE(ctx.ptep).isLocked {
            engine.report(.kvmWarn, "WARN_ON(!stage2_pte_is_locked(*ctx->ptep)) at IPA page \(ctx.addr)")
        }
        if new.isCounted { getPage(ofSlot: ctx.ptep) }
        arena.words.store(ctx.ptep, new.raw)                        // smp_store_release()
    }

    /// kvm_pgtable_stage2_map(): map `size` pages at IPA page `addr` to host
    /// pfns from `pfn`, with the walker flags of the caller (a fault handler
    /// passes `.handleFault` and `.shared`, with mmu_lock held for read). The
    /// largest leaf that fits is used (a block when `size` is a block and
    /// nothing forces pages); missing tables come from the memory cache.
    /// `installing` sees each leaf right before it is published.
    public func stage2Map(_ addr: Int, size: Int, pfn: Int, writable: Bool, executable: Bool, forcePTE: Bool = false,
                          flags: KVMPgtableWalkFlags, installing: ((_ addr: Int, _ pages: Int, _ pte: KVMPTE) -> Void)? = nil) -> Int32 {
        var walker = Stage2MapWalker(flags: flags.union([.tablePre, .leaf]), phys: pfn, writable: writable,
                                     executable: executable, forcePTE: forcePTE, installing: installing)
        assertWalkLock(flags, "kvm_pgtable_stage2_map()")
        return walk(addr, size, &walker)
        // dsb(ishst): the model's stores are already visible.
    }

    /// The lock a walk needs: mmu_lock held (read suffices) for a shared
    /// walk, held for write for an exclusive one.
    func assertWalkLock(_ flags: KVMPgtableWalkFlags, _ function: StaticString) {
        if flags.contains(.shared) { mmuLock.assertHeld(function) } else { mmuLock.assertHeldWrite(function) }
    }
}

/// stage2_map_walker() with its `struct stage2_map_data`.
struct Stage2MapWalker: KVMPgtableWalker {
    let flags: KVMPgtableWalkFlags
    /// data->phys: the pfn mapped at the walk's start.
    let phys: Int
    let writable: Bool
    let executable: Bool
    /// data->force_pte (pgt->force_pte_cb()).
    let forcePTE: Bool
    let installing: ((Int, Int, KVMPTE) -> Void)?

    mutating func visit(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx, _ visit: KVMPgtableWalkFlags) -> Int32 {
        switch visit {
        case .tablePre: return tablePre(pgt, ctx)
        case .leaf: return leaf(pgt, ctx)
        default: return -Errno.EINVAL
        }
    }

    /// stage2_map_walker_phys_addr().
    func physAddr(_ ctx: KVMPgtableVisitCtx) -> Int { phys + (ctx.addr - ctx.start) }

    /// stage2_leaf_mapping_allowed(): no block when pages are forced; else
    /// kvm_block_mapping_supported(): the granule fits in the range and both
    /// the IPA and the pfn are aligned to it.
    func leafMappingAllowed(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx) -> Bool {
        if forcePTE && ctx.level < pgt.lastLevel { return false }
        let g = pgt.granulePages(ctx.level)
        return g <= ctx.end - ctx.addr && ctx.addr % g == 0 && physAddr(ctx) % g == 0
    }

    /// stage2_map_walker_try_leaf(): install a leaf at this level with
    /// break-before-make; -EAGAIN (nothing written) when the same mapping, or
    /// one differing only in permissions, is already there (the vcpu faults
    /// again and relaxes them), or when another walker won the entry.
    func tryLeaf(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx) -> Int32 {
        guard leafMappingAllowed(pgt, ctx) else { return -Errno.E2BIG }
        let new = KVMPTE.leaf(pfn: physAddr(ctx), writable: writable, executable: executable, lastLevel: ctx.level == pgt.lastLevel)
        // stage2_pte_needs_update()
        if ctx.old.isValid && (ctx.old.raw ^ new.raw) & ~KVMPTE.perms == 0 { return -Errno.EAGAIN }
        guard pgt.tryBreakPTE(ctx) else { return -Errno.EAGAIN }
        // Cache maintenance before the guest can use it: not modelled (coherent memory).
        installing?(ctx.addr, pgt.granulePages(ctx.level), new)
        pgt.makePTE(ctx, new)
        pgt.engine.event("stage-2: IPA page \(ctx.addr) level \(ctx.level) -> \(new)")
        return 0
    }

    /// stage2_map_walk_table_pre(): a block where a table is: replace the
    /// table with the block, then free the unlinked subtree.
    func tablePre(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx) -> Int32 {
        let childp = ctx.old.pfn
        guard leafMappingAllowed(pgt, ctx) else { return 0 }
        let ret = tryLeaf(pgt, ctx)
        if ret != 0 { return ret }
        pgt.engine.point("stage2_map_walk_table_pre:before_free_unlinked_table")
        pgt.freeUnlinkedTable(childp, level: ctx.level)
        return 0
    }

    /// stage2_map_walk_leaf(): a leaf here if it fits; else a new table in
    /// place of the empty entry or of the block (break-before-make), which the
    /// walker then descends into.
    func leaf(_ pgt: KVMPgtable, _ ctx: KVMPgtableVisitCtx) -> Int32 {
        let ret = tryLeaf(pgt, ctx)
        if ret != -Errno.E2BIG { return ret }
        if ctx.level == pgt.lastLevel {
            pgt.engine.report(.kvmWarn, "WARN_ON(ctx->level == KVM_PGTABLE_LAST_LEVEL) in stage2_map_walk_leaf()")
            return -Errno.EINVAL
        }
        guard let childp = pgt.zallocPage() else { return -Errno.ENOMEM }
        guard pgt.tryBreakPTE(ctx) else {
            pgt.putPage(childp)
            return -Errno.EAGAIN
        }
        pgt.makePTE(ctx, .table(childp))
        return 0
    }
}
