// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import Harness

/// Seed 000: lazy guest-user ASID regeneration on an SMP host (MIPS trap and
/// emulate): guest process switches, vcpu migration, 2-bit host ASIDs cycling
/// under host processes.
public struct ASIDLazyRegenScenario: Scenario {
    public typealias Variant = ASIDVariant
    public typealias Options = TrapEmulOptions

    public init() {}
    public let name = "asid-lazy-regen"
    public let summary = "MIPS trap-and-emulate guest user ASIDs on an SMP host: process switches, vcpu migration, host ASID cycles (seed 000)"
    public let docs = "docs/mechanisms/asid.md"
    public var oracles: [Oracle] { StaleASIDOracle.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        mode == .deterministic
            ? Config(WorldSizes(cpus: 2, vcpus: 1, pages: 2, opsPerVCPU: 10, hostEventsPerSource: 3, hostEventSources: 2),
                     TrapEmulOptions(tlbSize: 8, asidBits: 2, guestProcesses: 2))
            : Config(WorldSizes(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 10, hostEventsPerSource: 3, hostEventSources: 2),
                     TrapEmulOptions(tlbSize: 16, asidBits: 3, guestProcesses: 3))
    }

    /// The low useg pages of a guest process must stay below the last useg page,
    /// which every process maps too (`TrapEmulGuestLayout`).
    public func validate(_ c: Config) throws(InputError) {
        try Self.checkLowUserPages(c.pages, scenario: name)
    }

    static func checkLowUserPages(_ pages: Int, scenario: String) throws(InputError) {
        let limit = TrapEmulGuestLayout.usegLastVPN - 1
        guard pages <= limit else {
            throw InputError("--pages \(pages) is more than \(scenario) maps below the last useg page (0x3ffff000): at most \(limit)")
        }
    }

    /// The v4.11 code (upstream-4.11) regenerates in kvm_trap_emul_vcpu_reenter(),
    /// not lazily in kvm_mips_check_asids(). Every variant reaches guest kernel-mode
    /// faults on kseg0 and kseg2/3 and the last useg page.
    public func coverageMarks(variant: Variant) -> [CoverageMark] {
        (variant == .upstream411 ? [TrapEmulVCPU.markNewCycle] : [TrapEmulVCPU.markNewCycle, TrapEmulVCPU.markLazyRegen])
            + [TrapEmulVCPU.markKernelKseg0Fault, TrapEmulVCPU.markKernelMappedFault, TrapEmulVCPU.markUsegLastPage]
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        ASIDWorld(engine: engine, variant: variant, gvaVariant: nil, config: config, seed: seed)
    }

    public var cases: [Case] {[
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "seed 000: lazy user ASID regeneration misses other CPUs"),
        Case(.patched, expects: .violation, schedules: 100_000,
             note: "finding: seed 000's diff zeroes guest_user_asid[cpu], not [i] (docs/mechanisms/asid.md)"),
        Case(.asMerged, expects: .violation, schedules: 100_000,
             note: "finding: seed 000 as merged: its mmu.c hunk closes hole (b), the [cpu] typo leaves hole (a) (docs/mechanisms/asid.md)"),
        Case(.patchedIntended, expects: .violation, schedules: 100_000,
             note: "finding: seed 000 as its message describes it closes holes (a) and (b); the v4.10 code leaves the other mode's host ASID stale after a new ASID cycle until the next vcpu_load, which guest kernel-mode accesses reach (hole c, docs/mechanisms/asid.md)"),
        Case(.upstream411, expects: .clean, schedules: 20_000,
             note: "the v4.11 ASID code"),
        Case(.propagateOnly, expects: .violation, schedules: 100_000,
             note: "half of seed 000 (propagate to other CPUs, keep the vcpu_load reset): hole (b) alone"),
        Case(.noCancelOnly, expects: .violation, schedules: 100_000,
             note: "the other half (drop the vcpu_load reset, no propagation): hole (a) alone"),
        // PCT at every kernel-memory access, one case per fixed variant (issue 20, classes 1 and 3).
        Case(.upstream411, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, note: "the v4.11 ASID code, PCT at every access"),
        // Random at every access as well as PCT: each finds windows the other
        // misses (issue 20, class 1; docs/reliability.md).
        Case(.upstream411, expects: .clean, schedules: 1_000, lengths: RunOptions.searchLengths, points: .accesses, note: "the v4.11 ASID code, random at every access"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(ASIDLazyRegenScenario(), into: $0) }
