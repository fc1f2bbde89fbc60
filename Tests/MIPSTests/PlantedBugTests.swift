// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import MIPS
@testable import Catalog
import Harness
import TestSupport

/// The fixed trap-and-emulate worlds a planted bug runs in: asid-lazy-regen's
/// v4.11 ASID code, and gva-flush's seed 001 on it.
enum PlantedTrapEmulWorld: String, ModelVariant {
    case asidUpstream411 = "asid-lazy-regen/upstream-4.11"
    case gvaPatched = "gva-flush/patched"
    var commit: KernelCommit? { nil }
}

/// Issue 20, class 2 ("modelled state nobody exercises"): the scenarios' worlds
/// with one of `TrapEmulPlantedBug`'s bugs planted in every vcpu. Declared here
/// and not registered: the suite never runs it; the production path is the
/// registered scenarios' (`plantedBug == nil`).
struct PlantedTrapEmulScenario: Scenario {
    typealias Variant = PlantedTrapEmulWorld
    typealias Options = TrapEmulOptions
    let bug: TrapEmulPlantedBug?
    var name: String { "planted-\(bug?.rawValue ?? "nothing")" }
    let summary = "a class-2 bug planted in a fixed trap-and-emulate world"
    let docs = "docs/mechanisms/gva-page-tables.md"
    var oracles: [Oracle] { StaleASIDOracle.oracles + MIPSMMU.oracles }

    func defaultConfig(mode: ExecutionMode) -> Config { ASIDLazyRegenScenario().defaultConfig(mode: mode) }

    func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        switch variant {
        case .asidUpstream411:
            ASIDWorld(engine: engine, variant: .upstream411, gvaVariant: nil, config: config, seed: seed, plantedBug: bug)
        case .gvaPatched:
            ASIDWorld(engine: engine, variant: .upstream411, gvaVariant: .patched, config: config, seed: seed, plantedBug: bug)
        }
    }

    var cases: [Case] { [] }
}

@Suite struct PlantedBugTests {
    /// Runs a planted world at the default search's lengths (1, 2, 4, 8 times the
    /// scenario's operations, as `kvmsim regress` does).
    static func run(_ bug: TrapEmulPlantedBug?, _ world: PlantedTrapEmulWorld, schedules: Int, strategy: StrategyKind = .random,
                    configure: (inout TrapEmulOptions) -> Void = { _ in }) throws -> (RunReport, Runner) {
        let scenario = PlantedTrapEmulScenario(bug: bug)
        var config = scenario.defaultConfig(mode: .deterministic)
        configure(&config.options)
        return try TestSupport.run(ScenarioSelection(scenario, variant: world, config: config), schedules: schedules, strategy: strategy,
                                   lengths: RunOptions.searchLengths)
    }

    /// The schedules within which the workload must catch each planted bug (the
    /// suite's budget for a violation case is 100,000; these are found in tens).
    static let budget = 2_000

    /// Each bug, in the worlds whose code it breaks: caught within the budget by
    /// both strategies, through the oracle that sees a stale translation.
    @Test(arguments: [
        (TrapEmulPlantedBug.entryHiKeepsOtherKernelContexts, PlantedTrapEmulWorld.asidUpstream411),
        (.entryHiKeepsOtherKernelContexts, .gvaPatched),
        (.tlbFlushRequestZeroesUserContextsOnly, .gvaPatched),
        (.usegFlushOnePageShort, .gvaPatched),
    ])
    func plantedBugIsCaught(bug: TrapEmulPlantedBug, world: PlantedTrapEmulWorld) throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try Self.run(bug, world, schedules: Self.budget, strategy: strategy)
            #expect(r.violations > 0, "\(bug.rawValue) in \(world.rawValue) not caught in \(Self.budget) schedules (\(strategy))")
            print("planted \(bug.rawValue) in \(world.rawValue), \(strategy): first violation at schedule \(r.firstViolationSchedule.map(String.init) ?? "none")")
            #expect(r.firstViolation.map { ["stale-asid", "I1"].contains($0.oracle) } == true, "\(r.firstViolation?.description ?? "")")
        }
    }

    /// The kernel mm's contexts are seen only through guest kernel-mode accesses:
    /// with the workload of user-mode reads only (what the scenarios ran before
    /// issue 20), the EntryHi bug goes unseen; with kernel-mode reads it is caught,
    /// and the failing access is a kernel-mode one.
    @Test func kernelContextsNeedKernelModeAccesses() throws {
        let (userOnly, _) = try Self.run(.entryHiKeepsOtherKernelContexts, .gvaPatched, schedules: 3_000) { $0.guestKernelAccesses = 0 }
        #expect(userOnly.violations == 0, "\(userOnly.firstViolation?.description ?? "")")
        let (r, runner) = try Self.run(.entryHiKeepsOtherKernelContexts, .gvaPatched, schedules: Self.budget)
        #expect(r.firstViolation?.description.contains("kernel-mode read") == true, "\(r.firstViolation?.description ?? "")")
        let replay = try Runner.replay(try #require(runner.failingTrace))
        #expect(replay.violations.first?.oracle == "stale-asid")
    }

    /// A useg flush one page short leaves exactly the last useg page stale: the
    /// failing read is of page 0x3ffff.
    @Test func shortUsegFlushIsSeenAtTheLastPage() throws {
        let (r, _) = try Self.run(.usegFlushOnePageShort, .gvaPatched, schedules: Self.budget)
        #expect(r.firstViolation?.description.contains("page 0x3ffff") == true, "\(r.firstViolation?.description ?? "")")
    }

    /// Nothing planted (the registered scenarios' code): the same worlds are clean.
    @Test func unplantedWorldsAreClean() throws {
        for world in PlantedTrapEmulWorld.allCases {
            for strategy in [StrategyKind.random, .pct] {
                let (r, _) = try Self.run(nil, world, schedules: 2_000, strategy: strategy)
                #expect(r.violations == 0, "\(world.rawValue): \(r.firstViolation?.description ?? "")")
            }
        }
    }
}
