// SPDX-License-Identifier: GPL-2.0-only
import Harness
import X86

/// The KVM-side work a TDP MMU world's background host CPU runs besides the
/// host mm's notifier events: each is a kernel path that zaps or walks the
/// TDP tables on its own.
public enum TDPKVMWork: String, CaseIterable, Codable, Sendable {
    /// Every kind below, drawn at random.
    case all
    /// No background work (host mm events and vcpus only).
    case none
    /// kvm_zap_gfn_range() (an MTRR or CR0.CD update, an APICv inhibit).
    case zapGFNRange = "zap-gfn-range"
    /// kvm_mmu_zap_all_fast() (set_nx_huge_pages(), a memslot deletion).
    case fastZap = "fast-zap"
    /// Dirty logging of slot 0 turned on and off, and harvested (KVM_GET_DIRTY_LOG).
    case dirtyLog = "dirty-log"
    /// The NX huge page recovery thread (with --huge-pages 1).
    case nxRecovery = "nx-recovery"

    /// The kinds `all` draws from (NX recovery only where huge pages exist).
    static func each(hugePages: Bool) -> [TDPKVMWork] { hugePages ? [.zapGFNRange, .fastZap, .dirtyLog, .nxRecovery] : [.zapGFNRange, .fastZap, .dirtyLog] }
}

/// The knobs of an x86 TDP MMU world: the tables' index bits per level
/// (small values make table frees frequent), how many address spaces the vcpus
/// use (2: vcpus enter and leave SMM, which has roots of its own), and the
/// background KVM work.
public struct TDPMMUOptions: ScenarioOptions {
    public var tableBits: Int
    public var addressSpaces: Int
    /// Memslots the guest RAM is split into per address space (2: as QEMU's
    /// RAM below and above 4 GiB, two slots over one contiguous hva range).
    public var memslots: Int
    /// 1: the guest RAM is hugetlbfs-backed (huge pages of 2^tableBits pages),
    /// with the NX huge page mitigation on (fetches split huge pages, and the
    /// recovery thread zaps the splits).
    public var hugePages: Int
    /// kvm.eager_page_split (1, the default: huge pages are split when dirty logging starts).
    public var eagerPageSplit: Int
    public var kvmWork: TDPKVMWork
    /// 1: the CPU logs dirty pages (Intel PML, kvm_intel.enable_pml=1, the
    /// default); 0: dirty logging write-protects (AMD, or enable_pml=0).
    public var pml: Int = 1
    /// 1 (the default): the host keeps page dirty state for the guest RAM
    /// (`HostMMDetail.pageDirty`: PG_dirty, swap copies that stay valid while a
    /// page is clean, reclaim that drops a clean page without writing it)
    /// with v6.11's do_swap_page() (`swapInMapsWritable`: a read fault maps an
    /// exclusive swapped page writable and clean), so that a Dirty bit
    /// kvm_set_pfn_dirty() fails to hand over is a write reclaim loses
    /// (lost-dirty-page). 0: the host mm of every world before issue 20's
    /// class 5 (reclaim always copies the page out). A trace without the key
    /// was recorded with 0.
    public var pageDirty: Int = 1
    /// A bug planted by a test (issue 20); nil in every scenario and case.
    public var plantedBug: TDPPlantedBug? = nil

    public init(tableBits: Int, addressSpaces: Int, memslots: Int = 1, hugePages: Int = 0, eagerPageSplit: Int = 1, kvmWork: TDPKVMWork) {
        self.tableBits = tableBits; self.addressSpaces = addressSpaces; self.memslots = memslots; self.hugePages = hugePages
        self.eagerPageSplit = eagerPageSplit; self.kvmWork = kvmWork
    }

    public static let knobs: [OptionKnob<TDPMMUOptions>] = [
        OptionKnob("table-bits", \.tableBits,
                   help: "x86 TDP: index bits per TDP table level (4 levels; a table maps 2^bits entries)."),
        OptionKnob("address-spaces", \.addressSpaces,
                   help: "x86 TDP: 1, or 2 for vcpus that enter and leave SMM (a second address space with roots of its own)."),
        OptionKnob("memslots", \.memslots,
                   help: "x86 TDP: 1, or 2 memslots per address space over one contiguous hva range (RAM below and above 4 GiB)."),
        OptionKnob("huge-pages", \.hugePages,
                   help: "x86 TDP: 1 for hugetlbfs-backed guest RAM with the NX huge page mitigation (and its recovery thread)."),
        OptionKnob("eager-page-split", \.eagerPageSplit,
                   help: "x86 TDP: the eager_page_split module parameter (1, the default; 0 leaves huge pages to be split by faults while dirty logging starts)."),
        OptionKnob("pml", \.pml,
                   help: "x86 TDP: 1 if the CPU logs dirty pages (Intel PML, the default), 0 if dirty logging write-protects (AMD, kvm_intel.enable_pml=0)."),
        OptionKnob("page-dirty", \.pageDirty,
                   help: "x86 TDP: 1 (the default) for the host's page dirty state with v6.11's writable swap-in (reclaim drops clean pages: lost-dirty-page), 0 for a host mm that copies every reclaimed page out."),
        OptionKnob("kvm-work", \.kvmWork,
                   help: "x86 TDP: the background KVM work on the host CPU after the event sources."),
    ]

    public func validate() throws(InputError) {
        guard (1...4).contains(tableBits) else { throw InputError("--table-bits must be between 1 and 4 (got \(tableBits))") }
        guard (1...2).contains(addressSpaces) else { throw InputError("--address-spaces must be 1 or 2 (got \(addressSpaces))") }
        guard (1...2).contains(memslots) else { throw InputError("--memslots must be 1 or 2 (got \(memslots))") }
        guard (0...1).contains(hugePages) else { throw InputError("--huge-pages must be 0 or 1 (got \(hugePages))") }
        guard (0...1).contains(pml) else { throw InputError("--pml must be 0 or 1 (got \(pml))") }
        guard (0...1).contains(pageDirty) else { throw InputError("--page-dirty must be 0 or 1 (got \(pageDirty))") }
        guard (0...1).contains(eagerPageSplit) else { throw InputError("--eager-page-split must be 0 or 1 (got \(eagerPageSplit))") }
        guard hugePages == 0 || memslots == 1 else { throw InputError("--huge-pages 1 needs --memslots 1") }
        guard kvmWork != .nxRecovery || hugePages == 1 else { throw InputError("--kvm-work nx-recovery needs --huge-pages 1") }
    }

    /// Rejects more guest pages than 4 levels of `tableBits` map (a second
    /// memslot starts half way up the gfn space).
    public func checkPagesFit(_ pages: Int, scenario: String) throws(InputError) {
        let span = 1 << (4 * tableBits)
        guard hugePages == 0 || pages % (1 << tableBits) == 0 else {
            throw InputError("--pages \(pages) is not a whole number of huge pages (\(1 << tableBits) pages each)")
        }
        guard memslots == 1 ? pages <= span : (pages + 1) / 2 <= span / 2 else {
            throw InputError("--pages \(pages) is more than \(scenario)'s TDP tables (4 levels of \(tableBits) bits, \(memslots) memslot(s)) map: at most \(span)")
        }
    }

    /// The guest frames of `pages` pages of RAM: one run from gfn 0, or with
    /// two memslots, the second half from the middle of the gfn space.
    public func gfns(pages: Int) -> [Int] {
        guard memslots == 2 else { return Array(0..<pages) }
        let low = (pages + 1) / 2, high = 1 << (4 * tableBits - 1)
        return Array(0..<low) + (0..<(pages - low)).map { high + $0 }
    }

    enum CodingKeys: String, CodingKey { case tableBits, addressSpaces, memslots, hugePages, eagerPageSplit, kvmWork, pml, pageDirty, plantedBug }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableBits = try c.decode(Int.self, forKey: .tableBits)
        addressSpaces = try c.decode(Int.self, forKey: .addressSpaces)
        memslots = try c.decodeIfPresent(Int.self, forKey: .memslots) ?? 1
        hugePages = try c.decodeIfPresent(Int.self, forKey: .hugePages) ?? 0
        eagerPageSplit = try c.decodeIfPresent(Int.self, forKey: .eagerPageSplit) ?? 1
        kvmWork = try c.decode(TDPKVMWork.self, forKey: .kvmWork)
        pml = try c.decodeIfPresent(Int.self, forKey: .pml) ?? 1
        pageDirty = try c.decodeIfPresent(Int.self, forKey: .pageDirty) ?? 0     // recorded before the knob: none
        plantedBug = try c.decodeIfPresent(TDPPlantedBug.self, forKey: .plantedBug)
    }
}
