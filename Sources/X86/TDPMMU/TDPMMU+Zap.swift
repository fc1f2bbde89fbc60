// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Zapping (tdp_mmu.c and mmu.c, v6.10-era): leaf SPTEs of a gfn range in
/// every root (the MMU notifier, kvm_zap_gfn_range()), whole roots (the fast
/// zap), one shadow page (NX recovery). "flush" is a TLB flush owed before
/// mmu_lock is released: a zap hands it to its caller, or does it before it
/// yields.
extension TDPMMU {
    /// tdp_mmu_zap_leafs(): zap the leaf SPTEs of `[start, end)` in `root`,
    /// mmu_lock held for write, yielding (if `canYield`) with the pending flush
    /// done first. Returns whether a flush is pending. Zaps in an invalid root
    /// need no flush: no vcpu can use it without reloading (and flushing).
    ///
    /// Before a835429cda91 (T1, `code.zapFlush == .perRoot`) the walk's flag
    /// started false in every root (zap_gfn_range()'s `flush_needed`): a flush
    /// still owed for an earlier root was not done before a yield here.
    func zapLeafs(_ root: Int, start: Int, end: Int, canYield: Bool, flush incoming: Bool) -> Bool {
        let end = min(end, maxGfnExclusive)
        kvm.mmuLock.assertHeldWrite("tdp_mmu_zap_leafs")
        var flush = code.zapFlush == .carried ? incoming : false
        rcu.readLock()
        var iter = TDPIter(mmu: self, root: root, minLevel: 1, start: start)
        while iter.valid && iter.gfn < end {
            defer { iter.next() }
            if canYield && iterCondResched(&iter, flush: flush, shared: false) {
                flush = false
                continue
            }
            guard iter.oldSPTE.isShadowPresent, iter.oldSPTE.isLast(level: iter.level) else { continue }
            engine.event("tdp_mmu_zap_leafs: root \(root)\(isInvalid(root) ? " (invalid)" : ""): gfn \(iter.gfn) \(iter.oldSPTE) zapped")
            iterSetSPTE(&iter, .nonPresent)
            if !isInvalid(root) { flush = true }
        }
        rcu.readUnlock()
        // Only leaf SPTEs were zapped: no kvm_mmu_page is freed, no RCU needed by the caller.
        return code.zapFlush == .carried ? flush : (flush || incoming)
    }

    /// kvm_tdp_mmu_zap_leafs(): every *valid* root (kvm_zap_gfn_range()).
    func zapLeafsAllValidRoots(start: Int, end: Int, flush incoming: Bool) -> Bool {
        kvm.mmuLock.assertHeldWrite("kvm_tdp_mmu_zap_leafs")
        var flush = incoming
        forEachRootYieldSafe(asID: nil, onlyValid: true) { root in
            flush = zapLeafs(root, start: start, end: end, canYield: true, flush: flush)
            return true
        }
        return flush
    }

    /// kvm_tdp_mmu_unmap_gfn_range(): the notifier's unmap over the roots of the
    /// range's address space, valid or not (d62007edf01f; before it, T3,
    /// `code.unmapRoots == .validOnly`, only valid ones: a root being zapped by a
    /// fast zap kept its SPTEs past the notifier's return).
    func unmapGFNRangeTDP(_ range: KVMGFNRange, flush incoming: Bool) -> Bool {
        var flush = incoming
        forEachRootYieldSafe(asID: range.slot.asID, onlyValid: code.unmapRoots == .validOnly) { root in
            flush = zapLeafs(root, start: Int(range.start), end: Int(range.end), canYield: range.mayBlock, flush: flush)
            return true
        }
        return flush
    }

    /// kvm_unmap_gfn_range() (mmu.c), the notifier's arch hook: mmu_lock held
    /// for write. (No rmaps: the shadow MMU is not modelled.)
    public func unmapGFNRange(_ range: KVMGFNRange) -> Bool {
        kvm.mmuLock.assertHeldWrite("kvm_unmap_gfn_range")
        engine.event("kvm_unmap_gfn_range(slot \(range.slot.id), as_id \(range.slot.asID), gfns \(range.start)..<\(range.end)): flush = false")
        return unmapGFNRangeTDP(range, flush: false)
    }

    /// kvm_zap_gfn_range() (mmu.c): zap a gfn range in every valid root as an
    /// invalidation of its own (MTRR and CR0.CD updates, APICv inhibits):
    /// begin, zap, flush, end, all with mmu_lock held for write.
    public func kvmZapGFNRange(_ gfns: Range<Int>) {
        engine.kvmWarnOn(gfns.isEmpty, "kvm_zap_gfn_range(): end <= start")
        kvm.mmuLock.writeLock()
        kvm.invalidate.begin()
        kvm.invalidate.rangeAdd(UInt64(gfns.lowerBound)..<UInt64(gfns.upperBound))
        engine.event("kvm_zap_gfn_range(\(gfns))")
        let flush = zapLeafsAllValidRoots(start: gfns.lowerBound, end: gfns.upperBound, flush: false)
        if flush { flushRemoteTLBs() }                    // kvm_flush_remote_tlbs_range()
        kvm.invalidate.end()
        kvm.mmuLock.writeUnlock()
    }

    /// __tdp_mmu_zap_root(): one pass over a whole root, zapping present SPTEs at
    /// `zapLevel` (non-leaf ones take their tables with them).
    private func zapRootPass(_ root: Int, shared: Bool, zapLevel: Int) {
        var iter = TDPIter(mmu: self, root: root, minLevel: zapLevel, start: 0)
        while iter.valid && iter.gfn < maxGfnExclusive {
            if iterCondResched(&iter, flush: false, shared: shared) { iter.next(); continue }
            guard iter.oldSPTE.isShadowPresent, iter.level <= zapLevel else { iter.next(); continue }
            if !shared {
                iterSetSPTE(&iter, .nonPresent)
            } else if !setSPTEAtomic(&iter, .nonPresent) {
                continue                                    // goto retry: the snapshot was refreshed
            }
            iter.next()
        }
    }

    /// tdp_mmu_zap_root(): zap a root whole, in passes of decreasing granularity
    /// (4K, 2M, 1G, then the root level), inside one RCU read section. The root
    /// must hold a reference so notifiers can still reach it when this yields.
    func zapRoot(_ root: Int, shared: Bool) {
        engine.kvmWarnOn(rootCount(root) == 0, "tdp_mmu_zap_root() of a root with no references")
        if shared { kvm.mmuLock.assertHeldRead("tdp_mmu_zap_root") } else { kvm.mmuLock.assertHeldWrite("tdp_mmu_zap_root") }
        rcu.readLock()
        for level in [1, 2, 3, rootLevel] { zapRootPass(root, shared: shared, zapLevel: level) }
        rcu.readUnlock()
    }

    /// kvm_tdp_mmu_zap_sp(): zap the SPTE that links `t` (never a root), its
    /// table going with it; mmu_lock held for write. No flush: the caller owes
    /// one. Returns whether it zapped.
    func zapSP(_ t: Int) -> Bool {
        let ptep1 = Int(sp.load(t, .ptep))
        if ptep1 == 0 { engine.kvmWarnOn(true, "kvm_tdp_mmu_zap_sp() of a root"); return false }
        let ptep = ptep1 - 1
        let old = readSPTE(ptep)
        if !old.isShadowPresent { engine.kvmWarnOn(true, "kvm_tdp_mmu_zap_sp(): the parent SPTE is not present"); return false }
        setSPTE(asID: spAsID(t), sptep: ptep, old: old, new: .nonPresent, gfn: spGfn(t), level: spLevel(t) + 1)
        return true
    }
}
