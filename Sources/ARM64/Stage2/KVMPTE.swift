// SPDX-License-Identifier: GPL-2.0-only

/// A stage-2 page-table entry, `kvm_pte_t` (arch/arm64/include/asm/kvm_pgtable.h
/// and arch/arm64/kvm/hyp/pgtable.c, v6.6 text), in the kernel's bit layout
/// where the model uses the bit:
///
/// | bit | kernel name | meaning |
/// |---|---|---|
/// | 0 | `KVM_PTE_VALID` | valid |
/// | 1 | `KVM_PTE_TYPE` | 1: a table (levels above the last) or a page (last level); 0: a block |
/// | 6 | `KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R` | the guest may read |
/// | 7 | `KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W` | the guest may write |
/// | 10 | `KVM_PTE_LEAF_ATTR_LO_S2_AF` | Access flag (KVM sets it; the CPU faults on a leaf without it) |
/// | 10 | `KVM_INVALID_PTE_LOCKED` | on an invalid entry: a break-before-make is in progress |
/// | 12... | output address | the host pfn of a leaf; of a table entry, its child table (in the model: the table's index in the arena) |
/// | 54 | `KVM_PTE_LEAF_ATTR_HI_S2_XN` | execute never |
///
/// An entry of 0 is empty; any non-zero entry is "counted" (it holds a
/// reference on the page of the table it lives in).
public struct KVMPTE: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    @inlinable public init(raw: UInt64) { self.raw = raw }

    public static let valid: UInt64 = 1 << 0                    // KVM_PTE_VALID
    public static let typeTable: UInt64 = 1 << 1                // KVM_PTE_TYPE (KVM_PTE_TYPE_TABLE / _PAGE)
    public static let s2apR: UInt64 = 1 << 6                    // KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R
    public static let s2apW: UInt64 = 1 << 7                    // KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W
    public static let af: UInt64 = 1 << 10                      // KVM_PTE_LEAF_ATTR_LO_S2_AF
    public static let lockedBit: UInt64 = 1 << 10               // KVM_INVALID_PTE_LOCKED
    public static let xn: UInt64 = 1 << 54                      // KVM_PTE_LEAF_ATTR_HI_S2_XN
    /// KVM_PTE_LEAF_ATTR_S2_PERMS.
    public static let perms: UInt64 = s2apR | s2apW | xn
    @usableFromInline static let addrShift: UInt64 = 12
    @usableFromInline static let addrMask: UInt64 = (1 << 36 - 1) << 12

    public static let empty = KVMPTE(raw: 0)
    /// KVM_INVALID_PTE_LOCKED.
    public static let locked = KVMPTE(raw: lockedBit)

    /// kvm_init_valid_leaf_pte() for stage 2: a block (below the last level)
    /// or a page mapping `pfn` with the permissions of `prot` (R always) and AF.
    public static func leaf(pfn: Int, writable: Bool, executable: Bool, lastLevel: Bool) -> KVMPTE {
        var r = UInt64(pfn) << addrShift | valid | s2apR | af
        if lastLevel { r |= typeTable }                         // KVM_PTE_TYPE_PAGE
        if writable { r |= s2apW }
        if !executable { r |= xn }
        return KVMPTE(raw: r)
    }

    /// kvm_init_table_pte(): a link to child table `table`.
    public static func table(_ table: Int) -> KVMPTE { KVMPTE(raw: UInt64(table) << addrShift | typeTable | valid) }

    /// kvm_pte_valid().
    @inlinable public var isValid: Bool { raw & KVMPTE.valid != 0 }
    /// kvm_pte_table(): a valid table entry (never at the last level).
    @inlinable public func isTable(level: Int, lastLevel: Int) -> Bool {
        level != lastLevel && raw & (KVMPTE.valid | KVMPTE.typeTable) == KVMPTE.valid | KVMPTE.typeTable
    }
    /// stage2_pte_is_locked().
    @inlinable public var isLocked: Bool { !isValid && raw & KVMPTE.lockedBit != 0 }
    /// stage2_pte_is_counted(): any non-zero entry.
    @inlinable public var isCounted: Bool { raw != 0 }
    public var isWritable: Bool { raw & KVMPTE.s2apW != 0 }
    public var isReadable: Bool { raw & KVMPTE.s2apR != 0 }
    public var isExecutable: Bool { raw & KVMPTE.xn == 0 }
    public var isYoung: Bool { raw & KVMPTE.af != 0 }
    /// kvm_pte_to_pfn() (a leaf) or the child table (a table entry).
    @inlinable public var pfn: Int { Int((raw & KVMPTE.addrMask) >> KVMPTE.addrShift) }

    public var description: String {
        if raw == 0 { return "empty" }
        if isLocked { return "LOCKED" }
        if !isValid { return "invalid(\(String(raw, radix: 16)))" }
        if raw & KVMPTE.typeTable != 0 && raw & KVMPTE.s2apR == 0 { return "table \(pfn)" }
        return "pfn \(pfn)\(isReadable ? " R" : "")\(isWritable ? "W" : "")\(isExecutable ? "X" : "")\(isYoung ? " AF" : "")"
    }
}
