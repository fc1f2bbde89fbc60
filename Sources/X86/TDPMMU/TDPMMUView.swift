// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `MMUOracle`'s view of the TDP MMU: what any root on the list, valid or
/// invalid, maps a gfn to (the notifier contract speaks of every root: a root
/// being torn down still maps what it maps until its zap reaches it). Reads
/// SPTE memory without scheduling points, inside an RCU read section (on real
/// threads tables are freed while it looks), skipping a table freed under it;
/// holds the MMU unowned (the oracle belongs to the VM, which the MMU holds).
final class TDPMMUView: SecondaryMMUView, @unchecked Sendable {
    unowned(unsafe) let mmu: TDPMMU
    init(_ mmu: TDPMMU) { self.mmu = mmu }

    /// A present mapping of `gfn` in any root (a young one if any is).
    func mapping(ofGfn gfn: Int) -> PTE {
        mmu.oracleReadSection {
            var found = PTE.none
            for root in mmu.roots {
                let p = lookup(root: root, gfn: gfn)
                if p.isYoung { return p }
                if p.isPresent && !found.isPresent { found = p }
            }
            return found
        }
    }

    /// The leaf for `gfn` in `root`, read with peeks (no scheduling point);
    /// `.none` if a table on the way was freed. Inside an RCU read section.
    func lookup(root: Int, gfn: Int) -> PTE {
        guard gfn < mmu.maxGfnExclusive else { return .none }
        var table = root, gen = mmu.arena.generation(root), level = mmu.rootLevel
        while true {
            let spte = SPTE(raw: mmu.arena.words.peek(mmu.arena.slot(table, mmu.spteIndex(gfn, level: level))))
            guard mmu.arena.isValid(table, generation: gen), spte.isShadowPresent else { return .none }
            if spte.isLast(level: level) { return mmu.hostView(spte, gfn: gfn, level: level) }
            table = spte.pfn
            gen = mmu.arena.generation(table)
            level -= 1
        }
    }
}

extension TDPMMU {
    /// An oracle's walk of the tables: inside an RCU read section on real
    /// threads (tables are freed meanwhile); in deterministic mode nothing runs
    /// during an oracle's check, and a section of its own would move the
    /// modelled RCU's callbacks (the model's behaviour must not depend on its oracles).
    func oracleReadSection<R>(_ body: () -> R) -> R {
        guard engine.mode == .parallel else { return body() }
        rcu.readLock(); defer { rcu.readUnlock() }
        return body()
    }

    /// Attaches `MMUOracle` (watching every root against the host, with today's
    /// invalidation state for I2) and registers the VM's MMU notifier. Before
    /// any actor runs.
    public func attachOracleAndRegisterNotifier() {
        let o = MMUOracle(engine: engine, hostMM: hostMM, memslots: memslots, notifier: kvm.invalidate, view: TDPMMUView(self))
        kvm.attach(oracle: o)
        kvm.registerMMUNotifier()
    }
}
