// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec
import RCU

/// `enum kvm_mips_flush` (arch/mips/include/asm/kvm_host.h, seed 001).
public struct KVMMipsFlush: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// KMF_USER (0): guest user mappings, USeg only.
    public static let user: KVMMipsFlush = []
    /// KMF_KERN: guest kernel mappings, USeg and KSeg2/3.
    public static let kern = KVMMipsFlush(rawValue: 0x1)
    /// KMF_GPA: guest physical mappings changed; KSeg0 too when KMF_KERN is set.
    public static let gpa = KVMMipsFlush(rawValue: 0x2)

    public var description: String {
        rawValue == 0 ? "KMF_USER" : [contains(.kern) ? "KMF_KERN" : nil, contains(.gpa) ? "KMF_GPA" : nil].compactMap { $0 }.joined(separator: "|")
    }
}

/// The GVA page tables of trap-and-emulate (seed 001): one per guest mm
/// (`guest_kernel_mm.pgd`, `guest_user_mm.pgd`), indexed by guest virtual page
/// (gva >> PAGE_SHIFT), mapping to host pfns. Only the owning vcpu changes them
/// (others ask it with a request), and the host TLB refill handler walks them for
/// the mm that is running; tables are freed as soon as a flush covers them
/// (`pte_free_kernel()`, no grace period, since no other CPU walks them).
public enum GVAPageTables {
    public static let pageShift = 12
    /// Guest virtual segments, as byte addresses (inclusive ends).
    public static let useg: ClosedRange<UInt64> = 0x0000_0000...0x3FFF_FFFF
    public static let kseg0: ClosedRange<UInt64> = 0x4000_0000...0x5FFF_FFFF
    public static let kseg23: ClosedRange<UInt64> = 0x6000_0000...0x7FFF_FFFF

    /// A table able to index every guest virtual page below 0x80000000.
    public static func makeTable(name: String, engine: SimEngine, rcu: any RCUDomain, capacity: Int = 256) -> PageTable {
        let t = PageTable(name: name, levels: 3, bitsPerLevel: 7, capacity: capacity, engine: engine, rcu: rcu, recordOwners: true)
        t.freeWithoutGracePeriod = true
        return t
    }

    /// kvm_mips_flush_gva_pgd(pgd, start_gva, end_gva): `end_gva` inclusive.
    @discardableResult
    static func flushGVAPgd(_ pgd: PageTable, _ start: UInt64, _ end: UInt64) -> Bool {
        pgd.flushRange(Int(start >> UInt64(pageShift)), Int(end >> UInt64(pageShift)), clearCoveredLeaves: false)
    }

    /// kvm_mips_flush_gva_pt(pgd, flags) (arch/mips/kvm/mmu.c): the exact ranges of
    /// the seed. With KMF_GPA all of the guest's virtual space could be affected
    /// (useg, plus kseg0 and kseg2/3 with KMF_KERN); without it useg, plus kseg2/3
    /// with KMF_KERN (kseg0 maps GPAs directly and does not depend on the ASID).
    public static func kvmMipsFlushGvaPt(_ pgd: PageTable, _ flags: KVMMipsFlush) {
        if flags.contains(.gpa) {
            if flags.contains(.kern) {
                flushGVAPgd(pgd, 0, 0x7FFF_FFFF)          // useg, kseg0, seg2/3
            } else {
                flushGVAPgd(pgd, 0, 0x3FFF_FFFF)          // useg
            }
        } else {
            flushGVAPgd(pgd, 0, 0x3FFF_FFFF)              // useg
            if flags.contains(.kern) {
                flushGVAPgd(pgd, 0x6000_0000, 0x7FFF_FFFF)   // kseg2/3
            }
        }
    }

    /// Test-only (`TrapEmulPlantedBug.usegFlushOnePageShort`): `kvmMipsFlushGvaPt` with
    /// every useg range ending at 0x3fffefff, one page short of the KMF_USER end.
    static func plantedFlushUsegOnePageShort(_ pgd: PageTable, _ flags: KVMMipsFlush) {
        if flags.contains(.gpa) && flags.contains(.kern) {
            flushGVAPgd(pgd, 0, 0x7FFF_FFFF)
        } else {
            flushGVAPgd(pgd, 0, 0x3FFF_EFFF)
            if flags.contains(.kern) && !flags.contains(.gpa) { flushGVAPgd(pgd, 0x6000_0000, 0x7FFF_FFFF) }
        }
    }
}
