// SPDX-License-Identifier: GPL-2.0-only

/// The shape of the TDP tables (mmu/spte.h, mmu_internal.h): `bitsPerLevel`
/// bits of gfn per level (the kernel's 9; a small world uses 1 or 2), and the
/// index and rounding macros that follow from it. A value: `TDPIter` copies it
/// once per walk, so that its steps touch no shared object.
public struct TDPGeometry: Sendable {
    /// Bits of gfn each level indexes.
    public let bitsPerLevel: Int
    /// SPTE_ENT_PER_PAGE.
    public let entriesPerTable: Int

    public init(bitsPerLevel: Int) {
        self.bitsPerLevel = bitsPerLevel
        entriesPerTable = 1 << bitsPerLevel
    }

    /// Gfns a level's SPTE maps: KVM_PAGES_PER_HPAGE(level) (PG_LEVEL_4K = 1).
    @inline(__always) public func pagesPerSPTE(level: Int) -> Int { 1 << ((level - 1) * bitsPerLevel) }
    /// SPTE_INDEX(gfn << PAGE_SHIFT, level).
    @inline(__always) func spteIndex(_ gfn: Int, level: Int) -> Int { (gfn >> ((level - 1) * bitsPerLevel)) & (entriesPerTable - 1) }
    /// gfn_round_for_level().
    @inline(__always) func roundForLevel(_ gfn: Int, level: Int) -> Int { gfn & ~(pagesPerSPTE(level: level) - 1) }
}
