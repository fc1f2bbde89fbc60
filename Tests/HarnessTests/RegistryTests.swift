// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import Harness
import Catalog
import TestSupport

/// A scenario declared only here, on the generic base world: nothing lists it
/// anywhere else, and the registry and the suite still find it, with its cases.
enum RegistryExampleVariant: String, ModelVariant {
    case upstream
    var commit: KernelCommit? { nil }
}

struct RegistryExampleScenario: Scenario {
    typealias Variant = RegistryExampleVariant
    typealias Options = NoOptions
    let name = "registry-example"
    let summary = "a scenario a test declares: the generic base world under every host mm event"
    let docs = "docs/writing-a-scenario.md"
    var oracles: [Oracle] { MinimalArchMMU.oracles }

    func defaultConfig(mode: ExecutionMode) -> Config {
        Config(WorldSizes(cpus: 2, vcpus: 2, pages: 4, opsPerVCPU: 4, hostEventsPerSource: 3, hostEventSources: 1))
    }

    func validate(_ c: Config) throws(InputError) {
        guard c.pages <= BaseWorld.maxPages else { throw InputError("\(name) supports at most \(BaseWorld.maxPages) pages") }
    }

    func coverageMarks(variant: Variant) -> [CoverageMark] { [MinimalArchMMU.markRetry] }

    func makeWorld(engine: SimEngine, variant: Variant, config: Config, seed: UInt64) -> any ScenarioWorld {
        BaseWorld(engine: engine, sizes: config.sizes, seed: seed)
    }

    var cases: [Case] {[
        Case(.upstream, expects: .clean, schedules: 300, note: "the generic notifier protocol holds under every host mm event"),
    ]}
}

@used @section("kvmsim_scenarios")
private let registration: ScenarioRecord = { ScenarioRegistry.emit(RegistryExampleScenario(), into: $0) }

@Suite struct ScenarioRegistryTests {
    @Test func aScenarioDeclaredInATestFileIsFoundWithItsCases() throws {
        let s = try ScenarioRegistry.named("registry-example")
        #expect(s.variants == ["upstream"])
        #expect(s.oracles.contains(.I1) && s.oracles.contains(.lockdep))
        let cases = RegressionSuite.cases.filter { $0.scenario == "registry-example" }
        #expect(cases.map(\.id) == ["registry-example/upstream"])
        #expect(try RegressionSuite.run(try #require(cases.first), budget: nil).passed)
    }

    @Test func theRegistryIsSortedAndNamesAreUnique() {
        let names = ScenarioRegistry.all.map(\.name)
        #expect(names == names.sorted())
        #expect(Set(names).count == names.count)
        #expect(names.count >= 11)
    }

    @Test func theBaseWorldHoldsOnRealThreadsAndReachesTheRetry() throws {
        let (d, _) = try run("registry-example", "upstream", schedules: 500)
        #expect(d.violations == 0, "\(d.firstViolation?.description ?? "")")
        let (p, _) = try run("registry-example", "upstream", mode: .parallel, seconds: 1)
        #expect(p.violations == 0, "\(p.firstViolation?.description ?? "") \(p.violationsByOracle)")
        #expect(p.schedules > 0)
    }

    @Test func typedCaseOverridesNameTheCase() throws {
        let c = try #require(RegressionSuite.cases.first { $0.scenario == "sync-mmu-stress" && $0.seed == 3 })
        #expect(c.id == "sync-mmu-stress/patched mark-accessed=v6.13 pages=2 vcpus=1 seed=3")
        #expect(c.selection.sizes.pages == 2 && c.selection.sizes.vcpus == 1)
        #expect(c.commit?.id == "411740f5422a")
    }

    /// A PCT case of another depth than 3 says so in its id and its run flags,
    /// so two PCT cases of one configuration stay apart and each reruns as it ran.
    @Test func aPCTCaseNamesItsDepthWhenNotTheDefault() throws {
        let deep = try #require(RegressionSuite.cases.first { $0.strategy == .pct && $0.depth != 3 })
        #expect(deep.id.contains(" depth=\(deep.depth)"))
        #expect(try #require(deep.runFlags).joined(separator: " ").contains("--depth \(deep.depth)"))
        let usual = try #require(RegressionSuite.cases.first { $0.strategy == .pct && $0.depth == 3 })
        #expect(!usual.id.contains("depth="))
    }
}
