// SPDX-License-Identifier: GPL-2.0-only
import Harness
import KVMCore
import MIPS

/// The knobs of a MIPS GPA world (seed 004): the GPA table's index bits per
/// level (small values make table frees frequent), each host CPU's TLB size,
/// how emptied GPA tables are freed (`--gpa-table-free rcu|immediate|after-flush`)
/// which kernel's host mm calls the notifiers (`--host-mm v4.11|v4.13`), what
/// backs guest RAM (`--guest-ram anon|file`) and whether reclaim honours young
/// bits (`--reclaim-young ignore|check`).
public struct MIPSGPAOptions: ScenarioOptions {
    public var tableBits: Int
    public var tlbSize: Int
    public var gpaTableFree: GPATableFree
    public var hostMM: HostMMForm
    public var markAccessed: AccessedMarking
    public var guestRam: GuestRAM
    public var reclaimYoung: ReclaimYoung

    public init(tableBits: Int, tlbSize: Int, gpaTableFree: GPATableFree = .rcu, hostMM: HostMMForm = .v413,
                markAccessed: AccessedMarking = .v411, guestRam: GuestRAM = .anon, reclaimYoung: ReclaimYoung = .ignore) {
        self.tableBits = tableBits; self.tlbSize = tlbSize; self.gpaTableFree = gpaTableFree; self.hostMM = hostMM
        self.markAccessed = markAccessed; self.guestRam = guestRam; self.reclaimYoung = reclaimYoung
    }

    public static let knobs: [OptionKnob<MIPSGPAOptions>] = [
        OptionKnob("table-bits", \.tableBits,
                   help: "MIPS GPA: index bits per GPA table level (a table maps 2^bits entries; an invalidation frees a table only when it covers all of them)."),
        OptionKnob("gpa-table-free", \.gpaTableFree,
                   help: "MIPS GPA: free emptied GPA tables after an RCU grace period (rcu, kvmsim's design) or at once, as arch/mips/kvm/mmu.c does (immediate)."),
        OptionKnob("host-mm", \.hostMM,
                   help: "MIPS GPA: the host mm's notifier calls in reclaim: v4.11 (try_to_unmap_one() calls invalidate_page under the page table lock, the seed's kernel) or v4.13 (invalidate_range_start/end around it)."),
        OptionKnob("mark-accessed", \.markAccessed,
                   help: "MIPS GPA: where kvm_mips_map_page() marks pages accessed: v4.11 (after the unlock, the slow path after dropping its reference, to v6.12) or v6.13 (slow path only, before the unlock)."),
        OptionKnob("guest-ram", \.guestRam,
                   help: "MIPS GPA (sync-mmu-race/stress): guest RAM backing: anon (private anonymous memory: swap, zero page, KSM, COW) or file (MAP_SHARED of a file on a disk file system: page cache, writeback through page_mkclean(), no KSM or COW)."),
        OptionKnob("reclaim-young", \.reclaimYoung,
                   help: "MIPS GPA (sync-mmu-race/stress): ignore (reclaim unmaps the page it picks) or check (v4.11: page_referenced() and try_to_unmap_one() clear young bits through clear_flush_young and keep a young page)."),
    ]

    enum CodingKeys: String, CodingKey { case tableBits, tlbSize, gpaTableFree, hostMM, markAccessed, guestRam, reclaimYoung }

    /// Traces written before a knob existed lack its key and ran its old
    /// form: `gpaTableFree` rcu, `hostMM` v4.13, `markAccessed` v4.11 (which
    /// did nothing observable before the page flags were modelled).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableBits = try c.decode(Int.self, forKey: .tableBits)
        tlbSize = try c.decode(Int.self, forKey: .tlbSize)
        gpaTableFree = try c.decodeIfPresent(GPATableFree.self, forKey: .gpaTableFree) ?? .rcu
        hostMM = try c.decodeIfPresent(HostMMForm.self, forKey: .hostMM) ?? .v413
        markAccessed = try c.decodeIfPresent(AccessedMarking.self, forKey: .markAccessed) ?? .v411
        guestRam = try c.decodeIfPresent(GuestRAM.self, forKey: .guestRam) ?? .anon
        reclaimYoung = try c.decodeIfPresent(ReclaimYoung.self, forKey: .reclaimYoung) ?? .ignore
    }

    /// `guestRam` and `reclaimYoung` are written only when they differ from
    /// their defaults, so that the configs (and traces) of runs that do not
    /// use them stay as they were.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tableBits, forKey: .tableBits)
        try c.encode(tlbSize, forKey: .tlbSize)
        try c.encode(gpaTableFree, forKey: .gpaTableFree)
        try c.encode(hostMM, forKey: .hostMM)
        try c.encode(markAccessed, forKey: .markAccessed)
        if guestRam != .anon { try c.encode(guestRam, forKey: .guestRam) }
        if reclaimYoung != .ignore { try c.encode(reclaimYoung, forKey: .reclaimYoung) }
    }

    public func validate() throws(InputError) {
        guard (1...4096).contains(tlbSize) else { throw InputError("TLB size must be between 1 and 4096 (got \(tlbSize))") }
        guard (1...12).contains(tableBits) else { throw InputError("table bits must be between 1 and 12") }
    }

    /// Rejects more guest pages than a 3-level GPA table of `tableBits` index
    /// bits per level can map (the scenarios keep tables tiny on purpose, so
    /// frees happen).
    public func checkPagesFit(_ pages: Int, scenario: String) throws(InputError) {
        try Self.checkPagesFit(pages, tableBits: tableBits, scenario: scenario)
    }

    /// The same check for a GPA table of `bits` index bits per level.
    public static func checkPagesFit(_ pages: Int, tableBits bits: Int, scenario: String) throws(InputError) {
        let span = 1 << (3 * bits)
        guard pages <= span else {
            throw InputError("--pages \(pages) is more than \(scenario)'s GPA table (3 levels of \(bits) bits) maps: at most \(span)")
        }
    }
}
