// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A page-table entry as the host mm sees it (`pte_t` through pte_present(),
/// pte_write(), pte_dirty(), pte_young(), pte_pfn()): present, may be written,
/// dirty (written), young (accessed), and the pfn above the flag bits. An
/// architecture whose secondary page table keeps the same facts in the host's
/// layout reuses it for its own entries (MIPS's GPA table does, with
/// `_PAGE_WRITE`, `__WRITEABLE` and `_PAGE_ACCESSED` of pgtable-bits.h).
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
