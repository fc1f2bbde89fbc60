// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import X86
import Harness

/// A historical race for the regression suite: x86 steal time and paravirtual
/// TLB flushes (CVE-2019-3016), in three stages: the v5.4 copy-and-write-back
/// that loses KVM_VCPU_FLUSH_TLB (pre-fix), the v5.6 fix that maps the page
/// through a gfn_to_pfn cache no MMU notifier invalidates (patched), and the
/// v5.16 fix of that fix, which goes through the hva again (hva-cache).
///
/// Oracles: `stale-guest-tlb` (once a remap's TLB flush has returned, no vcpu
/// reads the page through a TLB entry of the old mapping) and
/// `stale-shared-area` (KVM writes steal time into the page that backs the gfn now).
public struct StealTimeScenario: Scenario {
    public typealias Variant = StealTimeVariant
    public typealias Options = NoOptions

    public init() {}
    public let name = "steal-time-flush"
    public let summary = "x86 PV TLB flush via steal_time.preempted vs. record_steal_time's copy (CVE-2019-3016)"
    public let docs = "docs/regression-suite.md"
    public var oracles: [Oracle] { StealTimeVM.oracles }

    public func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 1, vcpus: 2, pages: 2, opsPerVCPU: 6, hostEventsPerSource: 3, hostEventSources: 1))
    }

    public func validate(_ c: Config) throws(InputError) {
        if c.vcpus < 2 { throw InputError("\(name) needs at least 2 vcpus (got \(c.vcpus))") }
    }

    public func coverageMarks(variant: Variant) -> [CoverageMark] {
        [StealTimeVM.markPVFlushQueued, StealTimeVM.markHostPVFlush, StealTimeVM.markIPI]
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        StealTimeWorld(engine: engine, variant: variant, config: config, seed: seed)
    }

    // Budgets (issue 20, class 3; measured 2026-12-07 by stress/mutate at 69e9865):
    // planted bugs by 84, CVE-2019-3016 by 27: 2,000 random, 1,000 PCT.
    public var cases: [Case] {[
        Case(.preFix, expects: .violation, schedules: 100_000,
             note: "historical: CVE-2019-3016, record_steal_time() overwrites KVM_VCPU_FLUSH_TLB"),
        Case(.patched, expects: .clean, schedules: 2_000, configure: { $0.hostEventSources = 0 },
             note: "historical: xchg() on the guest's steal_time page holds while the host never remaps it"),
        Case(.patched, expects: .violation, schedules: 100_000,
             note: "historical T7: the gfn_to_pfn cache keeps the old page after the host remaps the gfn (a COW after soft-dirty clearing)"),
        Case(.hvaCache, expects: .clean, schedules: 2_000,
             note: "T7 fixed (7e2175ebd695): steal time written through the hva, into the page mapped now"),
        // PCT at every kernel-memory access, one case per fixed variant (issue 20, classes 1 and 3).
        Case(.patched, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, configure: { $0.hostEventSources = 0 },
             note: "xchg() on the steal_time page, no host remaps, PCT at every access"),
        Case(.hvaCache, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, note: "T7 fixed, PCT at every access"),
        // Random at every access as well as PCT: each finds windows the other
        // misses (issue 20, class 1; docs/reliability.md).
        Case(.hvaCache, expects: .clean, schedules: 1_000, lengths: RunOptions.searchLengths, points: .accesses, note: "T7 fixed, random at every access"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(StealTimeScenario(), into: $0) }
