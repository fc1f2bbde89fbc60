// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `MMUOracle`'s view of a stage-2 table: the leaf that maps a gfn now, read
/// with peeks (no scheduling point), as the host sees it. On real threads the
/// walk runs inside an RCU read section and gives up on a freed table.
final class Stage2MMUView: SecondaryMMUView, @unchecked Sendable {
    unowned(unsafe) let mmu: Stage2MMU
    init(_ mmu: Stage2MMU) { self.mmu = mmu }

    func mapping(ofGfn gfn: Int) -> PTE {
        mmu.oracleReadSection {
            guard let (pte, level) = mmu.peekLeaf(gfn) else { return .none }
            let g = mmu.pgt.granulePages(level)
            return PTE(pfn: pte.pfn + (gfn - gfn / g * g),
                       flags: PTE.present | PTE.read | (pte.isWritable ? PTE.write : 0) | (pte.isYoung ? PTE.young : 0))
        }
    }
}

/// The stage-2 oracles that are not `MMUOracle`'s: break-before-make as the
/// CPUs see it, and VMIDs. Both read with peeks: they never add a scheduling point.
extension Stage2MMU {
    /// The valid leaf that maps `gfn` in this VM's table now, and its level
    /// (nil: none, or a table on the way was freed).
    func peekLeaf(_ gfn: Int) -> (KVMPTE, Int)? {
        guard gfn < pgt.ipaPages else { return nil }
        var table = pgt.pgd, gen = pgt.arena.generation(table), level = pgt.startLevel
        while true {
            let pte = KVMPTE(raw: pgt.arena.words.peek(pgt.arena.slot(table, pgt.index(gfn, level: level))))
            guard pgt.arena.isValid(table, generation: gen), pte.isValid else { return nil }
            if !pte.isTable(level: level, lastLevel: pgt.lastLevel) { return (pte, level) }
            table = pte.pfn
            gen = pgt.arena.generation(table)
            level += 1
        }
    }

    /// An oracle's walk: inside an RCU read section on real threads (tables are
    /// freed meanwhile); in deterministic mode nothing runs during a check.
    func oracleReadSection<R>(_ body: () -> R) -> R {
        guard engine.mode == .parallel else { return body() }
        pgt.rcu.readLock(); defer { pgt.rcu.readUnlock() }
        return body()
    }

    /// break-before-make: a CPU's translation of `gfn` (from this VM's table,
    /// now or through its TLB) gives the page the table's valid leaf maps, if
    /// it has one.
    func breakBeforeMakeCheck(cpu: Int, gfn: Int, pfn: Int, via: String) {
        withoutAccessPoints {
            let now = oracleReadSection { peekLeaf(gfn) }
            guard let (pte, level) = now else { return }
            let g = pgt.granulePages(level)
            let want = pte.pfn + (gfn - gfn / g * g)
            if want != pfn {
                engine.report(.breakBeforeMake, "cpu\(cpu) translated IPA page \(gfn) of VM \(vmIndex) to pfn \(pfn) through \(via), while the stage-2 table maps it to pfn \(want) (\(pte) at level \(level)): two valid translations")
            }
        }
    }

    /// vmid: the CPU running this VM's guest has VTTBR's VMID equal to the
    /// VMID the VM holds now, not 0, and no other CPU runs another VM's guest
    /// under it.
    func vmidOracleCheck(cpu p: ARM64CPU) {
        withoutAccessPoints {
            let running = p.peekVTTBRVMID
            if running == 0 {
                engine.report(.vmid, "cpu\(p.index) runs VM \(vmIndex)'s guest with VMID 0 (VTTBR_EL2 programmed before a VMID was allocated)")
                return
            }
            let held = vmids.allocatedVMID(vmid)
            if running != held {
                engine.report(.vmid, "cpu\(p.index) runs VM \(vmIndex)'s guest with VMID \(running), but the VM's VMID is \(held)")
            }
            for q in domain.cpus where q !== p {
                if let other = q.inGuestVM, other != vmIndex, q.peekVTTBRVMID == running {
                    engine.report(.vmid, "cpu\(p.index) runs VM \(vmIndex) and cpu\(q.index) runs VM \(other), both under VMID \(running)")
                }
            }
        }
    }

    /// Attaches `MMUOracle` (this VM's stage-2 against its host mm, with
    /// today's invalidation state for I2) and registers the VM's MMU
    /// notifier. Before any actor runs.
    public func attachOracleAndRegisterNotifier() {
        let o = MMUOracle(engine: engine, hostMM: hostMM, memslots: memslots, notifier: kvm.invalidate, view: Stage2MMUView(self))
        kvm.attach(oracle: o)
        kvm.registerMMUNotifier()
    }
}
