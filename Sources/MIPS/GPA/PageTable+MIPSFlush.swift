// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The range walks of arch/mips/kvm/mmu.c (v4.11) over a radix `PageTable`: the
/// GPA and GVA flushes that free covered tables, and BUILD_PTE_RANGE_OP().
/// Owner's lock held (`kvm->mmu_lock` for the GPA table; the owning vcpu for
/// its GVA tables).
extension PageTable {
    /// kvm_mips_flush_{gpa,gva}_{pgd,pud,pmd,pte}(): clear entries for pages
    /// `start ... end` (inclusive, as the kernel's), freeing every table the range
    /// covers entirely. `clearCoveredLeaves`: the GPA flavour clears each present PTE
    /// of a fully covered PTE table; the GVA flavour (kvm_mips_flush_gva_pte) leaves
    /// them, since the parent frees the table anyway. Returns whether the pgd could
    /// be freed (everything below it was). `cleared`, if given, is called with each
    /// present PTE just before it is cleared (pre-fix's kvm_release_pfn_clean()).
    @discardableResult
    public func flushRange(_ start: Int, _ end: Int, clearCoveredLeaves: Bool, cleared: ((PTE) -> Void)? = nil) -> Bool {
        flushLevel(table: 0, level: 0, start, end, clearCoveredLeaves, cleared)
    }

    private func flushLevel(table: Int, level: Int, _ start: Int, _ end: Int, _ clearCovered: Bool, _ cleared: ((PTE) -> Void)?) -> Bool {
        let iMin = index(start, level: level)
        let iMax = index(end, level: level)
        var safeToRemove = iMin == 0 && iMax == entriesPerTable - 1
        if level == levels - 1 {
            if safeToRemove && !clearCovered { return true }
            for i in iMin...iMax {
                let old = load(slot: slot(table, i))
                guard old.isPresent else { continue }
                cleared?(old)                       // before set_pte(), as pre-fix's kvm_release_pfn_clean()
                set(slot: slot(table, i), .none)
            }
            return safeToRemove
        }
        var from = start
        var to = Int.max
        for i in iMin...iMax {
            defer { from = 0 }
            let s = slot(table, i)
            let e = entry(slot: s)
            if e == 0 { continue }
            if i == iMax { to = end }
            let c = PageTable.child(e)
            if flushLevel(table: c, level: level + 1, from, to, clearCovered, cleared) {
                clearDirectoryEntry(slot: s)   // pmd_clear / pud_clear
                retire(c)                   // pte_free_kernel / pmd_free, after a grace period
            } else {
                safeToRemove = false
            }
        }
        return safeToRemove
    }

    /// BUILD_PTE_RANGE_OP(): apply `op` to present PTEs of pages `start ... end`
    /// (inclusive); returns whether any entry changed.
    @discardableResult
    public func rangeOp(_ start: Int, _ end: Int, _ op: (PTE) -> PTE) -> Bool {
        rangeLevel(table: 0, level: 0, start, end, op)
    }

    private func rangeLevel(table: Int, level: Int, _ start: Int, _ end: Int, _ op: (PTE) -> PTE) -> Bool {
        let iMin = index(start, level: level)
        let iMax = index(end, level: level)
        var changed = false
        if level == levels - 1 {
            for i in iMin...iMax {
                let old = load(slot: slot(table, i))
                guard old.isPresent else { continue }
                let new = op(old)
                if new != old { set(slot: slot(table, i), new); changed = true }
            }
            return changed
        }
        var from = start
        var to = Int.max
        for i in iMin...iMax {
            defer { from = 0 }
            let e = entry(slot: slot(table, i))
            if e == 0 { continue }
            if i == iMax { to = end }
            if rangeLevel(table: PageTable.child(e), level: level + 1, from, to, op) { changed = true }
        }
        return changed
    }

}
