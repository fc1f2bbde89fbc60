// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import MIPS
import Harness

/// A historical race for the regression suite (section 7 of the reference): a
/// fault handler that keeps its `mmu_notifier_seq` snapshot in a signed `int`
/// (x86 from a955cad84cda until ba6e3fe25543, v6.3; fixed in v6.1.50 by a
/// stable-only patch). Once the sequence count passes 2^31 the sign-extended
/// snapshot never equals it, `mmu_notifier_retry()` always says retry, and
/// every fault spins forever: a hang, not a corruption.
///
/// The world is sync-mmu-race's (SYNC_MMU code in its no-change-pte form, which
/// holds on real threads; one host event source), with `mmu_notifier_seq`
/// starting at 2^31 - 1 so the first invalidation crosses the line; the
/// snapshot type is the only difference between variants. The fault path is
/// MIPS's `kvm_mips_map_page()`, which has the same snapshot/retry protocol as
/// x86's fault path of the time.
public struct MMUSeqWrapScenario: Scenario {
    public typealias Variant = MMUSeqSnapshotType
    public typealias Options = MIPSGPAOptions

    public init() {}
    public let name = "mmu-seq-wrap"
    public let summary = "a signed int mmu_seq snapshot past 2^31: every fault retries forever (historical x86 hang)"
    public let docs = "docs/regression-suite.md"
    public var oracles: [Oracle] { MIPSMMU.oracles }
    public static let initialSeq: UInt64 = (1 << 31) - 1

    /// sync-mmu-race's sizes on the host mm this scenario always had (the
    /// v4.13 reclaim form, no zero page, no change_pte from KSM: x86's era for
    /// this race, and its traces stay as they were).
    public func defaultConfig(mode: ExecutionMode) -> Config {
        var c = SyncMMURaceScenario().defaultConfig(mode: mode)
        c.options.hostMM = .v413
        return c
    }

    public func coverageMarks(variant: Variant) -> [CoverageMark] { [MIPSMMU.markRetry] }

    public func validate(_ c: Config) throws(InputError) {
        try c.options.checkPagesFit(c.pages, scenario: name)
        guard c.options.guestRam == .anon, c.options.reclaimYoung == .ignore else {
            throw InputError("\(name) keeps the host mm it had: --guest-ram and --reclaim-young are for sync-mmu-race and sync-mmu-stress")
        }
    }

    public func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        SyncMMUWorld(engine: engine, variant: .noChangePTE, config: config, seed: seed,
                     mmuSeqType: variant, initialMMUNotifierSeq: Self.initialSeq, hostDetail: [])
    }

    // Budgets (issue 20, class 3; measured 2026-12-07 by stress/mutate at 69e9865):
    // the signed snapshot hangs by schedule 2; no planted bug of its own: 2,000.
    public var cases: [Case] {[
        Case(.signedInt, expects: .violation, schedules: 100_000,
             note: "historical: a signed int mmu_seq snapshot past 2^31 retries forever"),
        Case(.unsignedLong, expects: .clean, schedules: 2_000,
             note: "historical: unsigned long mmu_seq"),
        // PCT at every kernel-memory access, one case per fixed variant (issue 20, classes 1 and 3).
        Case(.unsignedLong, expects: .clean, schedules: 1_000, strategy: .pct, lengths: RunOptions.searchLengths, points: .accesses, note: "unsigned long mmu_seq, PCT at every access"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(MMUSeqWrapScenario(), into: $0) }
