// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// One MIPS host CPU's TLB, holding guest translations (virtual page -> pfn):
/// gfn -> pfn for the VZ-style GPA mappings, guest virtual page -> pfn under
/// trap and emulate.
///
/// Entries are tagged with an address-space id (the vcpu's, standing for the
/// host ASID of its guest mm). An entry has a D (dirty) bit: without it a write
/// traps (TLB modified exception) even though the translation is valid.
///
/// Word layout: bit 0 valid, bit 1 dirty, bits 2-15 tag, bits 16-39 virtual page,
/// bits 40-63 pfn. Locking: only the vcpu loaded on this CPU fills, uses and
/// flushes it; oracles read it through atomics.
public final class MIPSTLB: @unchecked Sendable {
    public let cpu: Int
    public let size: Int
    private let entries: AtomicWords
    /// When each entry was filled (`MMUOracle.agingClock`), for the aging oracle.
    private let stamps: AtomicWords
    private let owners: AtomicWords
    private let victim = AtomicWords(count: 1)

    public struct Entry: Equatable, Sendable {
        public var tag: Int, vpn: Int, pfn: Int, dirty: Bool
        /// Fill order (model only, not part of the hardware entry).
        public var stamp: UInt64 = 0
        /// Who filled it and for what (model only: an oracle's record, e.g. the
        /// guest address space the translation belongs to).
        public var owner: UInt64 = 0
        public init(tag: Int, vpn: Int, pfn: Int, dirty: Bool, stamp: UInt64 = 0, owner: UInt64 = 0) {
            self.tag = tag; self.vpn = vpn; self.pfn = pfn; self.dirty = dirty; self.stamp = stamp; self.owner = owner
        }
    }

    public init(cpu: Int, size: Int = 16) {
        self.cpu = cpu
        self.size = size
        // Not `kernel:`: a CPU's TLB is touched only by code running on that CPU,
        // under its run lock (`vcpu_load(cpu)`, `run_on_cpu`), and by oracles.
        // A switch before such an access is the same schedule as one after it,
        // so access-level points here would add steps and no interleaving.
        entries = AtomicWords(count: size)
        stamps = AtomicWords(count: size)
        owners = AtomicWords(count: size)
    }

    deinit { entries.free(); stamps.free(); owners.free(); victim.free() }

    static let vpnLimit = 1 << 24, pfnLimit = 1 << 24, tagLimit = 1 << 14

    @inline(__always) static func encode(_ e: Entry) -> UInt64 {
        1 | (e.dirty ? 2 : 0) | UInt64(e.tag) << 2 | UInt64(e.vpn) << 16 | UInt64(e.pfn) << 40
    }
    @inline(__always) static func decode(_ w: UInt64) -> Entry? {
        guard w & 1 != 0 else { return nil }
        return Entry(tag: Int((w >> 2) & 0x3FFF), vpn: Int((w >> 16) & 0xFF_FFFF), pfn: Int(w >> 40), dirty: w & 2 != 0)
    }

    /// TLB probe.
    public func lookup(tag: Int, vpn: Int) -> Entry? {
        for i in 0..<size {
            if var e = MIPSTLB.decode(entries.load(i)), e.tag == tag, e.vpn == vpn {
                e.stamp = stamps.load(i)
                e.owner = owners.load(i)
                return e
            }
        }
        return nil
    }

    /// tlbwr: write a random (here round-robin) entry, after invalidating a matching one.
    public func fill(_ e: Entry) {
        precondition(e.vpn < MIPSTLB.vpnLimit && e.pfn < MIPSTLB.pfnLimit && e.tag < MIPSTLB.tagLimit)
        invalidate(tag: e.tag, vpn: e.vpn)
        let v = Int(victim.add(0, 1) % UInt64(size))
        stamps.store(v, e.stamp)
        owners.store(v, e.owner)
        entries.store(v, MIPSTLB.encode(e))
    }

    /// kvm_mips_host_tlb_inv(): drop the entry for (tag, gfn).
    public func invalidate(tag: Int, vpn: Int) {
        for i in 0..<size {
            if let e = MIPSTLB.decode(entries.load(i)), e.tag == tag, e.vpn == vpn { entries.store(i, 0) }
        }
    }

    /// Drop every entry of one address space (a flush of one ASID).
    public func flush(tag: Int) {
        for i in 0..<size {
            if let e = MIPSTLB.decode(entries.load(i)), e.tag == tag { entries.store(i, 0) }
        }
    }

    /// local_flush_tlb_all().
    public func flushAll() { for i in 0..<size { entries.store(i, 0) } }

    /// Valid entries (oracles, tests).
    public var validEntries: [Entry] { (0..<size).compactMap { MIPSTLB.decode(entries.load($0)) } }
}
