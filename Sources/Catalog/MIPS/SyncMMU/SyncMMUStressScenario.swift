// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import Harness

/// Seed 004 under every host mm event at once: 4 vcpus fault, read and write
/// 64 pages while every host event source zaps, swaps, KSM-merges, COW-breaks,
/// mprotects and ages.
public struct SyncMMUStressScenario: Scenario {
    public typealias Variant = SyncMMUVariant
    public typealias Options = MIPSGPAOptions

    public init() {}
    public let name = "sync-mmu-stress"
    public let summary = "vcpus fault, read and write random pages while every host CPU zaps, swaps, KSM-merges, COW-breaks, mprotects and ages (seed 004)"
    public let docs = "docs/mechanisms/sync-mmu.md"
    public var oracles: [Oracle] { MIPSMMU.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 2, vcpus: 4, pages: 64, opsPerVCPU: 24, hostEventsPerSource: 12, hostEventSources: 2),
               MIPSGPAOptions(tableBits: 3, tlbSize: 16, hostMM: .v411))
    }

    public func validate(_ c: Config) throws(InputError) { try c.options.checkPagesFit(c.pages, scenario: name) }

    public func coverageMarks(variant: Variant) -> [CoverageMark] {
        [MIPSMMU.markFastPath, MIPSMMU.markRetry, MIPSMMU.markSetSpte]
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        SyncMMUWorld(engine: engine, variant: variant, config: config, seed: seed)
    }

    public var cases: [Case] {[
        Case(.patched, expects: .violation, seed: 3, schedules: 2_000, configure: { $0.pages = 2; $0.vcpus = 1; $0.options.markAccessed = .v613 },
             note: "finding: change_pte during a concurrent invalidation (docs/mechanisms/sync-mmu.md)"),
        Case(.patched, expects: .violation, seed: 7, schedules: 100_000, lengths: RunOptions.searchLengths, configure: SyncMMURaceScenario.v613,
             note: "finding: the change_pte race at the default sizes, found by the default search"),
        Case(.noChangePTE, expects: .clean, schedules: 1_000, configure: SyncMMURaceScenario.v613,
             note: "every host mm event at once, change_pte handler gone, pages marked accessed as v6.13 does"),
        Case(.noChangePTE, expects: .clean, schedules: 1_000, lengths: RunOptions.searchLengths, configure: SyncMMURaceScenario.v613,
             note: "the same, in the default search's longer worlds"),
        Case(.noChangePTE, expects: .violation, schedules: 10_000,
             note: "finding: kvm_set_pfn_accessed() on a page the host has freed (the v4.11 order), under every host mm event"),
        Case(.noChangePTE, expects: .clean, schedules: 1_000, configure: { $0.options.tableBits = 2; $0.options.markAccessed = .v613 },
             note: "tables of 4 entries, so a zap of 3-4 pages empties and frees one (8 never are: a zap covers at most 5)"),
        Case(.noChangePTE, expects: .violation, schedules: 10_000, configure: { $0.options.tableBits = 2; $0.options.gpaTableFree = .immediate; $0.options.markAccessed = .v613 },
             note: "finding: the kernel's immediate GPA table free under the lock-free VZ refill walk (docs/mechanisms/sync-mmu.md)"),
        Case(.noChangePTE, expects: .clean, schedules: 1_000, configure: { $0.options.tableBits = 2; $0.options.gpaTableFree = .afterFlush; $0.options.markAccessed = .v613 },
             note: "the same, tables freed after kvm_flush_remote_tlbs() (x86's and LoongArch's order)"),
        Case(.noChangePTE, expects: .clean, schedules: 1_000,
             configure: { $0.options.guestRam = .file; $0.options.reclaimYoung = .check; $0.options.markAccessed = .v613 },
             note: "file-backed guest RAM under writeback, reclaim and every other event, reclaim keeping young pages as v4.11 does (page_referenced(), try_to_unmap_one()'s clear_flush_young)"),
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "seed 004's race under every host mm event"),
        Case(.noRetry, expects: .violation, schedules: 100_000,
             note: "seed 004 without its mmu_notifier_retry() check, under every host mm event (mutation)"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(SyncMMUStressScenario(), into: $0) }
