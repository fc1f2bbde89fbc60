// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import PPC
import Harness

/// Seed 002 under load: 3 vcores of 2 vcpus moving between 4 cores, mixed HPT
/// hcalls with and without H_LOCAL, every host mm event.
public struct PPCTLBStressScenario: Scenario {
    public typealias Variant = TLBInvalidationVariant
    public typealias Options = PPCHVOptions

    public init() {}
    public let name = "ppc-tlb-stress"
    public let summary = "many vcores moving between cores, mixed HPT hcalls with and without H_LOCAL, host page-out, KSM, aging (seed 002)"
    public let docs = "docs/mechanisms/ppc-tlb.md"
    public var oracles: [Oracle] { Book3SHV.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        mode == .deterministic
            ? Config(WorldSizes(cpus: 16, vcpus: 6, pages: 4, opsPerVCPU: 12, hostEventsPerSource: 6, hostEventSources: 2),
                     PPCHVOptions(threadsPerCore: 4, vcpusPerVcore: 2, hLocalPercent: 50, tlbSize: 16))
            : Config(WorldSizes(cpus: 16, vcpus: 6, pages: 32, opsPerVCPU: 12, hostEventsPerSource: 6, hostEventSources: 2),
                     PPCHVOptions(threadsPerCore: 4, vcpusPerVcore: 2, hLocalPercent: 25, tlbSize: 32))
    }

    public func actorNames(_ c: Config) -> [String] { PPCTLBWorld.actorNames(c) }
    public func validate(_ c: Config) throws(InputError) { try PPCTLBWorld.validate(c, scenario: name) }
    public func coverageMarks(variant: Variant) -> [CoverageMark] { PPCTLBWorld.coverageMarks(variant) + [Book3SHV.markProtectLocal] }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        PPCTLBWorld(engine: engine, variant: variant, config: config, seed: seed, local: false)
    }

    // Budgets (issue 20, class 3; measured 2026-12-07 by stress/mutate at 69e9865):
    // one-vcpu cases: the finding by 116, planted bugs by 165: 2,000. PCT
    // at every access: H_ENTER's seq read moved after the PTE lookup by 476
    // (trace format 1); under format 2 by 9,662 at seed 1 (seeds 2-4: 570,
    // 5,066, 1,024; measured 2026-12-08 after stress/mutate found the mutant
    // surviving 1,500): 10,000. PCT of depth 6: H_BULK_REMOVE dropping the rmap chains before its
    // tlbies (the host's kvm_unmap_rmapp() then finds nothing to wait for and
    // frees a page a TLB still maps) needs 6,500-7,400 schedules at depth 3
    // (3 seeds), 258-4,866 at depth 6 (5 seeds; random: 666-9,103): 5,000
    // (measured 2026-12-07 at 52b2d18, stress/mutate's
    // ppc-h-bulk-remove-revmap-before-tlbie).
    public var cases: [Case] {[
        Case(.patched, expects: .clean, schedules: 1_000,
             note: "seed 002 with vcores moving and every host mm event"),
        Case(.patched, expects: .clean, schedules: 1_000, configure: { $0.vcpus = 4; $0.vcpusPerVcore = 4 },
             note: "seed 002 with a one-vcore guest: tlbiel and the need_tlb_flush entry flush as the vcore moves"),
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "seed 002's races with vcores moving and every host mm event"),
        Case(.patched, expects: .violation, schedules: 100_000, configure: { $0.vcpus = 1; $0.vcpusPerVcore = 1 },
             note: "finding: a one-vcpu guest's H_BULK_REMOVE uses tlbiel and never sets need_tlb_flush, so a core it ran on keeps the entry (docs/mechanisms/ppc-tlb.md)"),
        Case(.preFix, expects: .clean, schedules: 2_000, configure: { $0.vcpus = 1; $0.vcpusPerVcore = 1 },
             note: "the same one-vcpu guest before the seed: the last_cpu entry flush covers its migrations"),
        Case(.upstream313, expects: .clean, schedules: 2_000, configure: { $0.vcpus = 1; $0.vcpusPerVcore = 1 },
             note: "the same with H_BULK_REMOVE through global_invalidates() (the later code)"),
        Case(.upstream313, expects: .clean, schedules: 1_000,
             note: "the later H_BULK_REMOVE with vcores moving and every host mm event"),
        Case(.patched, expects: .clean, schedules: 10_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, note: "seed 002 with vcores moving, PCT at every access"),
        Case(.preFix, expects: .clean, schedules: 300, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, configure: { $0.vcpus = 1; $0.vcpusPerVcore = 1 },
             note: "the one-vcpu guest before the seed, PCT at every access"),
        Case(.patched, expects: .clean, schedules: 5_000, strategy: .pct, depth: 6, lengths: RunOptions.searchLengths,
             note: "seed 002 with vcores moving, PCT of depth 6 (an unlink and its flush interleaved with a host unmap and a TLB hit)"),
        Case(.patched, expects: .clean, schedules: 1_000, configure: { $0.vcpus = 2; $0.vcpusPerVcore = 1 },
             note: "a two-vcpu guest on two vcores: H_BULK_REMOVE's `online_vcpus == 1` test is the only thing between tlbiel and tlbie (issue 20 class 2: no case had exactly two vcpus)"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(PPCTLBStressScenario(), into: $0) }
