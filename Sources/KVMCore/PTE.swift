// SPDX-License-Identifier: GPL-2.0-only

/// A page-table entry, in the MIPS software PTE layout that both the host's page
/// tables and KVM's GPA page table use (arch/mips/include/asm/pgtable-bits.h):
/// `_PAGE_PRESENT`, `_PAGE_WRITE` (may be written), `__WRITEABLE` (dirty: written,
/// the hardware D bit), `_PAGE_ACCESSED` (young: the hardware V bit follows it, so
/// an old page faults on access). The pfn sits above the flag bits.
public struct PTE: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    public static let present: UInt64 = 1 << 0
    public static let read: UInt64 = 1 << 1
    public static let write: UInt64 = 1 << 2
    public static let dirty: UInt64 = 1 << 3
    public static let young: UInt64 = 1 << 4
    static let pfnShift: UInt64 = 12

    public static let none = PTE(raw: 0)

    /// pfn_pte(pfn, prot).
    public init(pfn: Int, flags: UInt64) { raw = UInt64(pfn) << PTE.pfnShift | flags }

    public var pfn: Int { Int(raw >> PTE.pfnShift) }
    public var isPresent: Bool { raw & PTE.present != 0 }
    public var isWrite: Bool { raw & PTE.write != 0 }
    public var isDirty: Bool { raw & PTE.dirty != 0 }
    public var isYoung: Bool { raw & PTE.young != 0 }

    public func mkyoung() -> PTE { PTE(raw: raw | PTE.young) }
    public func mkold() -> PTE { PTE(raw: raw & ~PTE.young) }
    public func mkdirty() -> PTE { PTE(raw: raw | PTE.dirty) }
    public func mkclean() -> PTE { PTE(raw: raw & ~PTE.dirty) }
    public func wrprotect() -> PTE { PTE(raw: raw & ~(PTE.write | PTE.dirty)) }
    public func mkwrite() -> PTE { PTE(raw: raw | PTE.write) }

    public var description: String {
        guard isPresent else { return raw == 0 ? "none" : "not-present(\(raw))" }
        return "pfn \(pfn) [" + (isWrite ? "W" : "-") + (isDirty ? "D" : "-") + (isYoung ? "Y" : "-") + "]"
    }
}

/// A page number in hex, as kernel developers read addresses ("0x7f000002").
public func hex(_ n: Int) -> String { "0x" + String(n, radix: 16) }
