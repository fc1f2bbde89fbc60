// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `MMUOracle`'s view of the TDP MMU: what any root on the list, valid or
/// invalid, maps a gfn to (the notifier contract speaks of every root: a root
/// being torn down still maps what it maps until its zap reaches it). Reads
/// SPTE memory without scheduling points; holds the MMU unowned (the oracle
/// belongs to the VM, which the MMU holds).
final class TDPMMUView: SecondaryMMUView, @unchecked Sendable {
    unowned(unsafe) let mmu: TDPMMU
    init(_ mmu: TDPMMU) { self.mmu = mmu }

    /// A present mapping of `gfn` in any root (a young one if any is).
    func mapping(ofGfn gfn: Int) -> PTE {
        var found = PTE.none
        for root in mmu.roots {
            let p = lookup(root: root, gfn: gfn)
            if p.isYoung { return p }
            if p.isPresent && !found.isPresent { found = p }
        }
        return found
    }

    /// The leaf for `gfn` in `root`, read with peeks (no scheduling point).
    func lookup(root: Int, gfn: Int) -> PTE {
        guard gfn < mmu.maxGfnExclusive else { return .none }
        var table = root, level = mmu.rootLevel
        while true {
            let spte = SPTE(raw: mmu.arena.words.peek(mmu.arena.slot(table, mmu.spteIndex(gfn, level: level))))
            guard spte.isShadowPresent else { return .none }
            if spte.isLast(level: level) { return mmu.hostView(spte, gfn: gfn, level: level) }
            table = spte.pfn
            level -= 1
        }
    }
}

extension TDPMMU {
    /// Attaches `MMUOracle` (watching every root against the host, with today's
    /// invalidation state for I2) and registers the VM's MMU notifier. Before
    /// any actor runs.
    public func attachOracleAndRegisterNotifier() {
        let o = MMUOracle(engine: engine, hostMM: hostMM, memslots: memslots, notifier: kvm.invalidate, view: TDPMMUView(self))
        kvm.attach(oracle: o)
        kvm.registerMMUNotifier()
    }
}
