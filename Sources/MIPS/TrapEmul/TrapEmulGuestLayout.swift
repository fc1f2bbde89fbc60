// SPDX-License-Identifier: GPL-2.0-only

/// The guest virtual address space of a trap-and-emulate guest (arch/mips/include/asm/kvm_host.h,
/// v4.10-v4.11: KVM_GUEST_KUSEG 0x00000000, KVM_GUEST_KSEG0 0x40000000,
/// KVM_GUEST_KSEG23 0x60000000; the guest's kseg0 runs in the host's useg), as
/// virtual page numbers, and the pages the model's guest touches in each segment.
///
/// The pages are chosen to reach every kind of access KVM translates and the
/// boundary pages of every range `kvm_mips_flush_gva_pt()` computes (useg
/// 0x00000000-0x3fffffff; kseg2/3 0x60000000-0x7fffffff; with KMF_GPA|KMF_KERN
/// 0x00000000-0x7fffffff):
///
/// - useg (guest user mode, and guest kernel mode touching user memory): pages
///   `0 ..< lowUserPages`, and the last useg page 0x3ffff (0x3ffff000, the KMF_USER end);
/// - kseg0 (guest kernel mode; unmapped, GPA = GVA - 0x40000000, the same in every
///   guest process): its first page 0x40000 (GPA 0). Its last page (0x5ffff000, GPA
///   0x1ffff000) needs 512 MB of guest RAM, which the model does not back, and is the
///   end of no range a flush computes;
/// - kseg2/3 (guest kernel mode, mapped through the guest TLB like useg): its first
///   page 0x60000 and last page 0x7ffff (the KMF_KERN range's ends).
///
/// Guest physical memory: guest process with ASID `a` maps its `i`-th mapped page
/// (useg pages, then kseg2/3 pages) to gfn `a * slotsPerProcess + i`, so a translation
/// borrowed from another process lands on another gfn; kseg0 page `0x40000 + k` is gfn
/// `k` (process ASIDs start at 1, so these gfns belong to no process).
public struct TrapEmulGuestLayout: Sendable, Equatable {
    public enum Segment: Sendable { case useg, kseg0, kseg23 }

    /// KVM_GUEST_KSEG0 >> PAGE_SHIFT.
    public static let kseg0FirstVPN = 0x4_0000
    /// KVM_GUEST_KSEG23 >> PAGE_SHIFT.
    public static let kseg23FirstVPN = 0x6_0000
    /// The last useg page (0x3ffff000).
    public static let usegLastVPN = 0x3_FFFF
    /// The last kseg2/3 page (0x7ffff000).
    public static let kseg23LastVPN = 0x7_FFFF

    public let userPages: [Int]
    public let kseg0Pages: [Int]
    public let kseg23Pages: [Int]
    public var slotsPerProcess: Int { userPages.count + kseg23Pages.count }

    public init(lowUserPages: Int) {
        precondition(lowUserPages >= 1 && lowUserPages < Self.usegLastVPN)
        userPages = Array(0..<lowUserPages) + [Self.usegLastVPN]
        kseg0Pages = [Self.kseg0FirstVPN]
        kseg23Pages = [Self.kseg23FirstVPN, Self.kseg23LastVPN]
    }

    /// KVM_GUEST_KSEGX() of a page.
    @inline(__always) public static func segment(_ vpn: Int) -> Segment {
        vpn < kseg0FirstVPN ? .useg : vpn < kseg23FirstVPN ? .kseg0 : .kseg23
    }

    /// Every page the guest kernel may touch: useg, kseg0, kseg2/3.
    public var kernelPages: [Int] { userPages + kseg0Pages + kseg23Pages }

    /// The gfn behind page `vpn` for guest process `asid` (kseg0: the same for every process).
    public func gfn(asid: Int, vpn: Int) -> Int {
        switch Self.segment(vpn) {
        case .kseg0:
            return vpn - Self.kseg0FirstVPN
        case .useg:
            guard let i = userPages.firstIndex(of: vpn) else { preconditionFailure("useg page \(vpn) not mapped by the guest") }
            return asid * slotsPerProcess + i
        case .kseg23:
            guard let j = kseg23Pages.firstIndex(of: vpn) else { preconditionFailure("kseg2/3 page \(vpn) not mapped by the guest") }
            return asid * slotsPerProcess + userPages.count + j
        }
    }

    /// Guest frames a world of `guestProcesses` processes needs (ASIDs 1...n, and kseg0's gfns).
    public func gfns(guestProcesses: Int) -> Int {
        precondition(kseg0Pages.allSatisfy { $0 - Self.kseg0FirstVPN < slotsPerProcess })
        return (guestProcesses + 1) * slotsPerProcess
    }
}
