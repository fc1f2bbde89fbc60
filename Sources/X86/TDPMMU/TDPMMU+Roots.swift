// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// TDP MMU roots (tdp_mmu.c, v6.10-era) and the vcpu's use of them (mmu.c):
/// a list of root pages, each with a reference count and `role.invalid`;
/// vcpus load a valid root and hold a reference; a fast zap marks every root
/// invalid, makes vcpus drop theirs, and zaps the invalid roots under the read
/// lock (kvm_mmu_zap_all_fast()).
extension TDPMMU {
    // MARK: - references and the list

    /// kvm_tdp_mmu_get_root(): refcount_inc_not_zero().
    func getRoot(_ t: Int) -> Bool {
        while true {
            let c = sp.load(t, .rootCount)
            if c == 0 { return false }
            if sp.cas(t, .rootCount, c, c + 1) { return true }
        }
    }

    /// kvm_tdp_mmu_put_root(): the last reference of an invalid root takes it
    /// off the list (list_del_rcu under tdp_mmu_pages_lock) and frees it after
    /// a grace period.
    func putRoot(_ t: Int) {
        guard sp.sub(t, .rootCount, 1) == 0 else { return }
        // The TDP MMU holds a reference to each root until it is invalidated.
        engine.kvmWarnOn(!isInvalid(t), "KVM_BUG_ON(!root->role.invalid): the last reference of a valid root was put")
        pagesLock.lock()
        listDelRCU(t)
        pagesLock.unlock()
        freeSPAfterGracePeriod(t)
    }

    /// list_add_rcu(&root->link, &kvm->arch.tdp_mmu_roots): at the head.
    /// tdp_mmu_pages_lock held.
    private func listAddRCU(_ t: Int) {
        pagesLock.assertHeld("list_add_rcu(tdp_mmu_roots)")
        sp.store(t, .nextRoot, rootsHead.load(0))
        rootsHead.store(0, UInt64(t + 1))                 // rcu_assign_pointer()
    }

    /// list_del_rcu(): unlinked; its own next pointer stays, for walkers on it.
    /// tdp_mmu_pages_lock held.
    private func listDelRCU(_ t: Int) {
        pagesLock.assertHeld("list_del_rcu(tdp_mmu_roots)")
        let next = sp.load(t, .nextRoot)
        if rootsHead.load(0) == UInt64(t + 1) { rootsHead.store(0, next); return }
        var p = Int(rootsHead.load(0)) - 1
        while p >= 0 {
            let n = sp.load(p, .nextRoot)
            if n == UInt64(t + 1) { sp.store(p, .nextRoot, next); return }
            p = Int(n) - 1
        }
    }

    /// The roots on the list now, in list order (oracles, tests; mmu_lock held
    /// or no actor running).
    public var roots: [Int] {
        var out: [Int] = [], p = Int(rootsHead.peek(0)) - 1
        while p >= 0 { out.append(p); p = Int(sp.peek(p, .nextRoot)) - 1 }
        return out
    }

    /// tdp_mmu_next_root(): the root after `prev` (the first if nil) that is
    /// valid (if `onlyValid`) and not on its way out, with a reference taken;
    /// the reference on `prev` is put. mmu_lock held (read or write).
    func nextRoot(after prev: Int?, onlyValid: Bool) -> Int? {
        // While the roots themselves are RCU-protected, fields such as
        // role.invalid are protected by mmu_lock.
        kvm.mmuLock.assertHeld("tdp_mmu_next_root")
        rcu.readLock()
        var next = (prev.map { sp.load($0, .nextRoot) } ?? rootsHead.load(0)).asRoot
        while let n = next {
            if (!onlyValid || !isInvalid(n)) && getRoot(n) { break }
            next = sp.load(n, .nextRoot).asRoot
        }
        rcu.readUnlock()
        if let prev { putRoot(prev) }
        return next
    }

    /// __for_each_tdp_mmu_root_yield_safe(): `body` per root of address space
    /// `asID` (nil: every one), holding a reference on it (so the body may
    /// drop mmu_lock). `body` returns false to stop early, keeping the
    /// reference on the root it stopped at, which is returned.
    @discardableResult
    func forEachRootYieldSafe(asID: Int?, onlyValid: Bool, _ body: (Int) -> Bool) -> Int? {
        var root = nextRoot(after: nil, onlyValid: onlyValid)
        while let r = root {
            kvm.mmuLock.assertHeld("for_each_tdp_mmu_root_yield_safe")
            if asID == nil || spAsID(r) == asID {
                if !body(r) { return r }
            }
            root = nextRoot(after: r, onlyValid: onlyValid)
        }
        return nil
    }

    /// __for_each_tdp_mmu_root() (list_for_each_entry): every root of `asID`,
    /// valid or not, with mmu_lock held for write (the list cannot change).
    func forEachRoot(asID: Int?, onlyValid: Bool, _ body: (Int) -> Void) {
        var p = rootsHead.load(0).asRoot
        while let r = p {
            kvm.mmuLock.assertHeldWrite("for_each_tdp_mmu_root")
            if (asID == nil || spAsID(r) == asID) && !(onlyValid && isInvalid(r)) { body(r) }
            p = sp.load(r, .nextRoot).asRoot
        }
    }

    // MARK: - vcpu roots (mmu.c)

    /// kvm_tdp_mmu_alloc_root(): a valid root of the vcpu's role (its address
    /// space), reused if one exists (checked under the read lock, then again
    /// under tdp_mmu_pages_lock), else a new one with two references (the
    /// vcpu's and the TDP MMU's own, put by the zap of an invalidated root).
    func allocRoot(_ vcpu: X86VCPU, asID: Int) -> Int? {
        kvm.mmuLock.readLock()
        var root = forEachRootYieldSafe(asID: asID, onlyValid: true) { _ in false }
        if root == nil {
            pagesLock.lock()
            // Recheck: another vcpu may have raced ahead and created a usable root.
            var p = rootsHead.load(0).asRoot
            while let r = p {
                if spAsID(r) == asID && !isInvalid(r) {
                    engine.kvmWarnOn(!getRoot(r), "kvm_tdp_mmu_alloc_root(): a valid root with no references")
                    root = r
                    break
                }
                p = sp.load(r, .nextRoot).asRoot
            }
            if root == nil, let t = allocSP(level: rootLevel, gfn: 0, asID: asID, ptep: nil) {
                sp.store(t, .rootCount, 2)
                listAddRCU(t)
                count(.rootsAllocated)
                engine.event("vcpu\(vcpu.id): kvm_tdp_mmu_alloc_root: new root \(t)")
                root = t
            }
            pagesLock.unlock()
        }
        kvm.mmuLock.readUnlock()
        return root
    }

    /// kvm_mmu_load(): a root for the vcpu, then a local flush of its TLB entries
    /// for that root (the root's provenance is unknown). False on -ENOMEM.
    func kvmMMULoad(_ vcpu: X86VCPU) -> Bool {
        guard let root = allocRoot(vcpu, asID: vcpu.asID) else { return false }
        vcpu.root = root
        vcpu.flushTLBCurrent()                                // kvm_x86_flush_tlb_current()
        return true
    }

    /// kvm_mmu_free_roots() of the current root: the reference is put under the
    /// read lock (mmu_free_root_page() on a TDP MMU root).
    func kvmMMUFreeRoots(_ vcpu: X86VCPU) {
        guard vcpu.root >= 0 else { return }
        kvm.mmuLock.readLock()
        kvm.mmuLock.assertHeldRead("mmu_free_root_page")
        putRoot(vcpu.root)
        vcpu.root = -1
        kvm.mmuLock.readUnlock()
    }

    /// kvm_mmu_free_obsolete_roots(): KVM_REQ_MMU_FREE_OBSOLETE_ROOTS; a TDP MMU
    /// root is obsolete when invalid (is_obsolete_sp()).
    func kvmMMUFreeObsoleteRoots(_ vcpu: X86VCPU) {
        if vcpu.root >= 0 && isInvalid(vcpu.root) { kvmMMUFreeRoots(vcpu) }
    }

    // MARK: - the fast zap

    /// kvm_tdp_mmu_invalidate_all_roots(): every valid root marked invalid and
    /// scheduled for the zap, which gets the TDP MMU's reference. mmu_lock held
    /// for write (a root never becomes invalid under active readers).
    func invalidateAllRoots() {
        kvm.mmuLock.assertHeldWrite("kvm_tdp_mmu_invalidate_all_roots")
        var p = rootsHead.load(0).asRoot
        while let r = p {
            if !isInvalid(r) {
                sp.store(r, .scheduledRootToZap, 1)
                sp.store(r, .invalid, 1)
            }
            p = sp.load(r, .nextRoot).asRoot
        }
    }

    /// kvm_tdp_mmu_zap_invalidated_roots(): under the read lock, each root the
    /// invalidation scheduled is zapped whole (yielding as it goes), then the
    /// TDP MMU's reference to it is put. No TLB flush: every vcpu loaded a new
    /// root (with a local flush) before it could enter the guest again.
    func zapInvalidatedRoots() {
        kvm.mmuLock.readLock()
        forEachRootYieldSafe(asID: nil, onlyValid: false) { root in
            guard sp.load(root, .scheduledRootToZap) != 0 else { return true }
            sp.store(root, .scheduledRootToZap, 0)
            engine.kvmWarnOn(!isInvalid(root), "KVM_BUG_ON(!root->role.invalid) in kvm_tdp_mmu_zap_invalidated_roots()")
            zapRoot(root, shared: true)
            // Put after the zap: the root must stay reachable by notifiers while zapped.
            putRoot(root)
            return true
        }
        kvm.mmuLock.readUnlock()
    }

    /// kvm_mmu_zap_all_fast() (mmu.c): invalidate every root and make every vcpu
    /// drop its own in one write-locked section, then zap the invalidated roots
    /// under the read lock. The caller holds kvm->slots_lock (a memslot update,
    /// or set_nx_huge_pages()).
    public func kvmMMUZapAllFast() {
        kvm.mmuLock.writeLock()
        engine.event("kvm_mmu_zap_all_fast: roots \(roots) invalidated")
        invalidateAllRoots()
        // Every vcpu reloads its root (and flushes) before it enters the guest again.
        kvm.makeAllCPUsRequest(X86VCPU.reqMMUFreeObsoleteRoots)
        kvm.mmuLock.writeUnlock()
        zapInvalidatedRoots()
    }
}

extension UInt64 {
    /// A list link (+1; 0 = end) as a root, nil at the end.
    var asRoot: Int? { self == 0 ? nil : Int(self) - 1 }
}
