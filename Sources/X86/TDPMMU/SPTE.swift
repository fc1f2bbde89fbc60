// SPDX-License-Identifier: GPL-2.0-only

/// An x86 TDP MMU SPTE (arch/x86/kvm/mmu/spte.h, v6.10-era text; EPT with
/// Accessed/Dirty bits enabled), in the kernel's bit layout where the model
/// uses the bit:
///
/// | bit | kernel name | meaning |
/// |---|---|---|
/// | 1 | `PT_WRITABLE_MASK` | the CPU may write through it |
/// | 2 | `VMX_EPT_EXECUTABLE_MASK` | the CPU may execute from it (cleared for NX huge pages: never on a huge SPTE) |
/// | 7 | `PT_PAGE_SIZE_MASK` | a huge (2M-level) leaf |
/// | 8 | `shadow_accessed_mask` | Accessed, set by the CPU's walker |
/// | 9 | `shadow_dirty_mask` | Dirty, set by the CPU on a write |
/// | 11 | `SPTE_MMU_PRESENT_MASK` | shadow-present |
/// | 12... | pfn | the host pfn of a leaf; of a non-leaf, its child table (in the model: the table's index in the arena) |
/// | 57 | `EPT_SPTE_HOST_WRITABLE` | the host mapping is writable |
/// | 58 | `EPT_SPTE_MMU_WRITABLE` | KVM may make it writable (fast_page_fault may set W without mmu_lock) |
/// | 63 | `SHADOW_NONPRESENT_VALUE` | suppress #VE: the value of every non-present SPTE |
///
/// `FROZEN_SPTE` (`REMOVED_SPTE` before v6.13) is `SHADOW_NONPRESENT_VALUE |
/// 0x5a0`: non-present, and never written by anyone who does not own it.
public struct SPTE: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    @inlinable public init(raw: UInt64) { self.raw = raw }

    public static let writable: UInt64 = 1 << 1                 // PT_WRITABLE_MASK
    public static let executable: UInt64 = 1 << 2               // VMX_EPT_EXECUTABLE_MASK
    public static let pageSize: UInt64 = 1 << 7                 // PT_PAGE_SIZE_MASK
    public static let accessed: UInt64 = 1 << 8                 // shadow_accessed_mask
    public static let dirty: UInt64 = 1 << 9                    // shadow_dirty_mask
    public static let mmuPresent: UInt64 = 1 << 11              // SPTE_MMU_PRESENT_MASK
    public static let hostWritable: UInt64 = 1 << 57            // EPT_SPTE_HOST_WRITABLE
    public static let mmuWritable: UInt64 = 1 << 58             // EPT_SPTE_MMU_WRITABLE
    @usableFromInline static let pfnShift: UInt64 = 12
    @usableFromInline static let pfnMask: UInt64 = (1 << 40 - 1) << 12

    /// SHADOW_NONPRESENT_VALUE.
    public static let nonPresent = SPTE(raw: 1 << 63)
    /// FROZEN_SPTE (REMOVED_SPTE).
    public static let frozen = SPTE(raw: 1 << 63 | 0x5a0)

    /// make_spte(): a leaf mapping `pfn` (`accessed` set: prefetch is not modelled).
    public static func leaf(pfn: Int, writable: Bool, hostWritable: Bool, executable: Bool, huge: Bool, dirty: Bool) -> SPTE {
        var r = UInt64(pfn) << pfnShift | mmuPresent | accessed
        if writable { r |= SPTE.writable }
        if hostWritable { r |= SPTE.hostWritable | mmuWritable }
        if executable { r |= SPTE.executable }
        if huge { r |= pageSize }
        if dirty { r |= SPTE.dirty }
        return SPTE(raw: r)
    }

    /// make_nonleaf_spte(): a link to child table `table`.
    public static func nonLeaf(table: Int) -> SPTE {
        SPTE(raw: UInt64(table) << pfnShift | mmuPresent | writable | executable | accessed)
    }

    /// is_shadow_present_pte().
    @inlinable public var isShadowPresent: Bool { raw & SPTE.mmuPresent != 0 }
    /// is_frozen_spte() (is_removed_spte()).
    @inlinable public var isFrozen: Bool { raw == SPTE.frozen.raw }
    /// is_large_pte().
    public var isLarge: Bool { raw & SPTE.pageSize != 0 }
    /// is_last_spte(): a leaf at `level` (PG_LEVEL_4K = 1).
    @inlinable public func isLast(level: Int) -> Bool { level == 1 || raw & SPTE.pageSize != 0 }
    /// is_writable_pte().
    public var isWritable: Bool { raw & SPTE.writable != 0 }
    /// is_mmu_writable_spte().
    public var isMMUWritable: Bool { raw & SPTE.mmuWritable != 0 }
    /// is_accessed_spte().
    public var isAccessed: Bool { raw & SPTE.accessed != 0 }
    /// is_dirty_spte().
    public var isDirty: Bool { raw & SPTE.dirty != 0 }
    public var isExecutable: Bool { raw & SPTE.executable != 0 }
    /// spte_to_pfn(): the host pfn of a leaf, the child table of a non-leaf.
    @inlinable public var pfn: Int { Int((raw & SPTE.pfnMask) >> SPTE.pfnShift) }

    /// spte_has_volatile_bits() (spte.c, v5.18-v6.12; the caller checks that
    /// the SPTE is a present leaf): bits the CPU or fast_page_fault() may set
    /// without mmu_lock. With A/D bits on, A clear, or W set and D clear; and
    /// an MMU-writable SPTE that is not writable (fast_page_fault may make it so).
    public var hasVolatileBits: Bool {
        if !isWritable && isMMUWritable { return true }
        return !isAccessed || (isWritable && !isDirty)
    }

    public var description: String {
        if isFrozen { return "FROZEN" }
        if !isShadowPresent { return raw == SPTE.nonPresent.raw ? "none" : "non-present(\(String(raw, radix: 16)))" }
        return "pfn \(pfn) [" + (isWritable ? "W" : "-") + (isDirty ? "D" : "-") + (isAccessed ? "A" : "-")
            + (isExecutable ? "X" : "-") + (isLarge ? "H" : "") + (isMMUWritable ? "" : " !mmu-w") + "]"
    }
}
