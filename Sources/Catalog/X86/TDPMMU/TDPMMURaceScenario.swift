// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import X86
import Harness

/// The x86 TDP MMU's historical races, small: two vcpus faulting under the
/// read lock (and now and then faulting as L2 on the shadow MMU), one host mm
/// event source firing the MMU notifier, and one host CPU of background KVM
/// work (kvm_zap_gfn_range(), the fast zap, dirty logging), on tiny tables so
/// that tables are freed and roots replaced often.
public struct TDPMMURaceScenario: Scenario {
    public typealias Variant = TDPMMUVariant
    public typealias Options = TDPMMUOptions

    public init() {}
    public let name = "tdp-mmu-race"
    public let summary = "x86 TDP MMU: parallel faults under the read lock vs. notifier zaps, kvm_zap_gfn_range, the fast zap, dirty logging and nested faults (T1, T3, T4, T5)"
    public let docs = "docs/mechanisms/x86-tdp-mmu.md"
    public var oracles: [Oracle] { TDPMMU.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 4, hostEventsPerSource: 3, hostEventSources: 1),
               TDPMMUOptions(tableBits: 1, addressSpaces: 1, memslots: 1, kvmWork: .all))
    }

    public func validate(_ c: Config) throws(InputError) {
        try c.options.checkPagesFit(c.pages, scenario: name)
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        TDPMMUWorld(engine: engine, variant: variant, config: config, seed: seed)
    }

    /// The default search's schedule lengths (the races need the longer ones).
    static let search = [1, 2, 4, 8]

    public var cases: [Case] {[
        Case(.upstream, expects: .clean, schedules: 20_000, lengths: Self.search,
             note: "every fix; one memslot, one address space"),
        Case(.upstream, expects: .violation, schedules: 20_000, lengths: Self.search,
             configure: { $0.options.memslots = 2 },
             note: "finding: kvm_unmap_gfn_range() starts every memslot with flush = false, so a zap yielding in the second memslot drops mmu_lock with the first one's flush still owed (RAM split below/above 4 GiB)"),
        Case(.upstream, expects: .violation, schedules: 20_000, lengths: Self.search,
             configure: { $0.options.addressSpaces = 2 },
             note: "finding, SMM form: the flush owed for address space 0's memslot is not done before address space 1's zap yields"),
        Case(.yieldFlushPreFix, expects: .violation, schedules: 20_000, lengths: Self.search,
             note: "historical T1: a zap over several roots yields in a later root with an earlier root's flush owed"),
        Case(.yieldFlushFixed, expects: .clean, schedules: 20_000, lengths: Self.search,
             note: "T1 fixed: the owed flush is carried across roots and done before a yield"),
        Case(.zapAllRootsPreFix, expects: .violation, schedules: 2_000, lengths: Self.search,
             note: "historical T3: the notifier returns while a fast zap's invalid root still maps the page"),
        Case(.zapAllRootsFixed, expects: .clean, schedules: 20_000, lengths: Self.search,
             note: "T3 fixed: the notifier zaps every root, valid or not"),
        Case(.volatileSPTEPreFix, expects: .violation, schedules: 20_000, lengths: Self.search,
             note: "historical T4: a plain store under the write lock drops the Dirty bit the CPU set since KVM read the SPTE"),
        Case(.volatileSPTEFixed, expects: .clean, schedules: 20_000, lengths: Self.search,
             note: "T4 fixed: an xchg (or LOCK AND) for an SPTE with volatile bits"),
        Case(.pagesAvailablePreFix, expects: .violation, schedules: 2_000, lengths: Self.search,
             note: "historical T5 (CVE-2022-45869): a TDP fault under the read lock zaps the oldest shadow pages (lockdep; two such faults move and free one page twice)"),
        Case(.pagesAvailableFixed, expects: .clean, schedules: 20_000, lengths: Self.search,
             note: "T5 fixed: only the shadow MMU's fault, under the write lock, recycles shadow pages"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(TDPMMURaceScenario(), into: $0) }
