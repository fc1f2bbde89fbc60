// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import Harness

/// Seed 004's race, small: 2 host CPUs, 2 vcpus, 4 pages, one host event
/// source, tiny GPA tables. Built to find the mmu_notifier_retry race fast.
public struct SyncMMURaceScenario: Scenario {
    public typealias Variant = SyncMMUVariant
    public typealias Options = MIPSGPAOptions

    public init() {}
    public let name = "sync-mmu-race"
    public let summary = "2 host CPUs, 2 vcpus, a few pages, one host event source: the mmu_notifier_retry race (seed 004)"
    public let docs = "docs/mechanisms/sync-mmu.md"
    public var oracles: [Oracle] { MIPSMMU.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 4, hostEventsPerSource: 2, hostEventSources: 1),
               MIPSGPAOptions(tableBits: 1, tlbSize: 4, hostMM: .v411))
    }

    public func validate(_ c: Config) throws(InputError) { try c.options.checkPagesFit(c.pages, scenario: name) }

    public func coverageMarks(variant: Variant) -> [CoverageMark] { [MIPSMMU.markFastPath, MIPSMMU.markRetry] }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        SyncMMUWorld(engine: engine, variant: variant, config: config, seed: seed)
    }

    /// The page state is handed over as v6.13 does (`--mark-accessed v6.13`)
    /// in every case about another race, so that the finding the v4.11 order
    /// shows at once (page-flags-after-free) does not come first.
    static let v613: @Sendable (inout Config) -> Void = { $0.options.markAccessed = .v613 }

    // Budgets (issue 20, class 3; measured 2026-12-07 by stress/mutate at 69e9865):
    // random: planted bugs by 18, races 1 and 2 by 10: 5,000 (race 5's
    // order needs 16,921: its own violation case). PCT at every access:
    // planted bugs by 155 (the seq snapshot moved after gfn_to_pfn_prot by 43,
    // and only there): 1,000.
    public var cases: [Case] {[
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "seed 004: no MMU notifiers, the host frees a page the GPA table still maps"),
        Case(.noRetry, expects: .violation, schedules: 100_000,
             note: "seed 004 without its mmu_notifier_retry() check (mutation)"),
        Case(.patched, expects: .violation, seed: 7, schedules: 1_000_000, lengths: RunOptions.searchLengths, configure: Self.v613,
             note: "finding: change_pte during the vcpu's own COW break and a host invalidation, found by the default search (docs/mechanisms/sync-mmu.md)"),
        Case(.noChangePTE, expects: .clean, schedules: 5_000, configure: Self.v613,
             note: "seed 004 without KVM's change_pte handler, pages marked accessed as v6.13 does"),
        Case(.noChangePTE, expects: .violation, schedules: 20_000,
             note: "finding: kvm_set_pfn_accessed() after kvm_release_pfn_clean() (slow path) or after the unlock with no reference (fast path) marks a page the host has freed (v4.11-v6.12; docs/mechanisms/sync-mmu.md)"),
        Case(.noChangePTE, expects: .violation, schedules: 20_000, configure: { $0.options.gpaTableFree = .immediate; $0.options.markAccessed = .v613 },
             note: "finding: the kernel frees emptied GPA page tables before its flush, under a VZ refill walk that has read a pointer to one (docs/mechanisms/sync-mmu.md)"),
        Case(.noChangePTE, expects: .clean, schedules: 5_000, configure: { $0.options.gpaTableFree = .afterFlush; $0.options.markAccessed = .v613 },
             note: "the same with the tables freed after kvm_flush_remote_tlbs() (x86's and LoongArch's order; no MIPS kernel had it)"),
        Case(.patched, expects: .clean, schedules: 5_000, configure: { $0.options.guestRam = .file; $0.options.markAccessed = .v613 },
             note: "file-backed guest RAM: writeback's page_mkclean_one() reaches KVM through invalidate_page, and a guest write after writeback took its copy is never lost (no COW or KSM, so no change_pte: race 3 cannot happen)"),
        // PCT at every kernel-memory access, one case per fixed variant (issue 20, classes 1 and 3).
        Case(.noChangePTE, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, configure: Self.v613,
             note: "seed 004 without change_pte, PCT at every access (finds the mmu_notifier_seq snapshot moved after gfn_to_pfn_prot)"),
        Case(.patched, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses,
             configure: { $0.options.guestRam = .file; $0.options.markAccessed = .v613 },
             note: "file-backed guest RAM with writeback, PCT at every access"),
        // Random at every access as well as PCT: each finds windows the other
        // misses (issue 20, class 1; docs/reliability.md).
        Case(.noChangePTE, expects: .clean, schedules: 1_000, lengths: RunOptions.searchLengths, points: .accesses, configure: Self.v613,
             note: "seed 004 without change_pte, random at every access"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(SyncMMURaceScenario(), into: $0) }
