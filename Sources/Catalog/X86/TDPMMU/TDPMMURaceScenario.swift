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
    public let summary = "x86 TDP MMU: parallel faults under the read lock vs. notifier zaps, kvm_zap_gfn_range, the fast zap, dirty logging, NX recovery and nested faults (T1-T5)"
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

    // Budgets (issue 20, class 3; measured 2026-12-07 by stress/mutate at 69e9865):
    // random at named points: planted bugs found by schedule 119, the pre-fix
    // races by 419 (T1): 2,000 each (the findings' configurations keep their
    // own). PCT at every access: planted bugs by 432: 2,000 for upstream,
    // 1,000 for each fixed stage. docs/mechanisms/x86-tdp-mmu.md records
    // longer clean runs of each.
    public var cases: [Case] {[
        Case(.upstream, expects: .clean, schedules: 2_000, lengths: Self.search,
             note: "every fix; one memslot, one address space"),
        Case(.upstream, expects: .violation, schedules: 20_000, lengths: Self.search,
             configure: { $0.options.memslots = 2 },
             note: "finding: kvm_unmap_gfn_range() starts every memslot with flush = false, so a zap yielding in the second memslot drops mmu_lock with the first one's flush still owed (RAM split below/above 4 GiB)"),
        Case(.upstream, expects: .violation, schedules: 20_000, lengths: Self.search,
             configure: { $0.options.addressSpaces = 2 },
             note: "finding, SMM form: the flush owed for address space 0's memslot is not done before address space 1's zap yields"),
        Case(.yieldFlushPreFix, expects: .violation, schedules: 20_000, lengths: Self.search,
             note: "historical T1: a zap over several roots yields in a later root with an earlier root's flush owed"),
        Case(.yieldFlushFixed, expects: .clean, schedules: 2_000, lengths: Self.search,
             note: "T1 fixed: the owed flush is carried across roots and done before a yield"),
        Case(.zapAllRootsPreFix, expects: .violation, schedules: 2_000, lengths: Self.search,
             note: "historical T3: the notifier returns while a fast zap's invalid root still maps the page"),
        Case(.zapAllRootsFixed, expects: .clean, schedules: 2_000, lengths: Self.search,
             note: "T3 fixed: the notifier zaps every root, valid or not"),
        Case(.volatileSPTEPreFix, expects: .violation, schedules: 20_000, lengths: Self.search,
             note: "historical T4: a plain store under the write lock drops the Dirty bit the CPU set since KVM read the SPTE"),
        Case(.volatileSPTEFixed, expects: .clean, schedules: 2_000, lengths: Self.search,
             note: "T4 fixed: an xchg (or LOCK AND) for an SPTE with volatile bits"),
        Case(.upstream, expects: .clean, schedules: 2_000, lengths: Self.search, configure: { $0.options.hugePages = 1 },
             note: "every fix, on hugetlbfs-backed RAM with the NX huge page mitigation and its recovery thread"),
        Case(.upstream, expects: .violation, seed: 4, schedules: 20_000, lengths: Self.search,
             configure: { $0.options.hugePages = 1; $0.options.eagerPageSplit = 0 },
             note: "candidate finding: with eager_page_split=0, a fault splits a huge page between the Dirty-bit clear and the 2M write-protect of logging's start; its 4K children inherit D=1 and later writes are never logged"),
        Case(.nxFlushPreFix, expects: .violation, schedules: 2_000, lengths: Self.search, configure: { $0.options.hugePages = 1 },
             note: "historical T2, stage 1 (29cf0f5007a2): NX recovery drops the flush its zap owes; a vcpu keeps the split's 4K translations past the unlock"),
        Case(.nxFlushFirstFix, expects: .clean, schedules: 2_000, lengths: Self.search, configure: { $0.options.hugePages = 1 },
             note: "T2, stage 2 (048f49809c52): `flush =` loses an earlier zap's flush only if kvm_tdp_mmu_zap_sp() returns false, which it does only on a WARN: latent, clean in the model"),
        Case(.nxFlushFixed, expects: .clean, schedules: 2_000, lengths: Self.search, configure: { $0.options.hugePages = 1 },
             note: "T2, stage 3 (315f02c60d94): `flush |=`"),
        Case(.pagesAvailablePreFix, expects: .violation, schedules: 2_000, lengths: Self.search,
             note: "historical T5 (CVE-2022-45869): a TDP fault under the read lock zaps the oldest shadow pages (lockdep; two such faults move and free one page twice)"),
        Case(.pagesAvailableFixed, expects: .clean, schedules: 2_000, lengths: Self.search,
             note: "T5 fixed: only the shadow MMU's fault, under the write lock, recycles shadow pages"),
        // PCT at every kernel-memory access, one case per fixed variant: finds
        // checks moved across a step with no named point (issue 20, class 1)
        // and races deeper than the random cases reach (class 3).
        Case(.upstream, expects: .clean, schedules: 2_000, strategy: .pct, lengths: Self.search, points: .accesses, note: "every fix, PCT at every access"),
        Case(.yieldFlushFixed, expects: .clean, schedules: 1_000, strategy: .pct, lengths: Self.search, points: .accesses, note: "T1 fixed, PCT at every access"),
        Case(.zapAllRootsFixed, expects: .clean, schedules: 1_000, strategy: .pct, lengths: Self.search, points: .accesses, note: "T3 fixed, PCT at every access"),
        Case(.volatileSPTEFixed, expects: .clean, schedules: 1_000, strategy: .pct, lengths: Self.search, points: .accesses, note: "T4 fixed, PCT at every access"),
        Case(.nxFlushFirstFix, expects: .clean, schedules: 1_000, strategy: .pct, lengths: Self.search, points: .accesses, configure: { $0.options.hugePages = 1 },
             note: "T2 stage 2, PCT at every access"),
        Case(.nxFlushFixed, expects: .clean, schedules: 1_000, strategy: .pct, lengths: Self.search, points: .accesses, configure: { $0.options.hugePages = 1 },
             note: "T2 fixed, PCT at every access"),
        Case(.pagesAvailableFixed, expects: .clean, schedules: 1_000, strategy: .pct, lengths: Self.search, points: .accesses, note: "T5 fixed, PCT at every access"),
        // Dirty logging without PML (AMD, kvm_intel.enable_pml=0): write protection,
        // so every first write after a harvest goes through fast_page_fault()
        // (issue 20 class 2: with PML the fast path almost never ran).
        Case(.upstream, expects: .clean, schedules: 2_000, lengths: Self.search, configure: { $0.options.pml = 0 },
             note: "every fix, dirty logging by write protection (no PML): the lockless fast path at work"),
        // Random at every access: a fast path storing where it must cmpxchg is
        // found by schedule 871 (seeds 1-3); PCT at every access missed it in 20,000.
        Case(.upstream, expects: .clean, schedules: 2_500, lengths: Self.search, points: .accesses,
             configure: { $0.options.pml = 0 }, note: "every fix without PML, random at every access"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(TDPMMURaceScenario(), into: $0) }
