// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
@testable import Scenarios

@Suite struct BadInputTests {
    func tmp(_ contents: String) -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-bad-\(UUID().uuidString).json").path
        FileManager.default.createFile(atPath: p, contents: contents.data(using: .utf8))
        return p
    }

    @Test func unknownScenarioAndVariant() {
        #expect(throws: InputError.self) { try ScenarioRegistry.named("nope") }
        let c = SyncMMUScenario.race.defaultConfig(mode: .deterministic)
        #expect(throws: InputError.self) { try Runner(RunOptions(scenario: "sync-mmu-race", variant: "nope", config: c)) }
    }

    @Test func badSizes() {
        for mutate in [{ (c: inout ScenarioConfig) in c.cpus = 0 }, { $0.vcpus = -1 }, { $0.pages = 1 << 40 }] {
            var c = SyncMMUScenario.race.defaultConfig(mode: .deterministic)
            mutate(&c)
            #expect(throws: InputError.self) { try Runner(RunOptions(scenario: "sync-mmu-race", variant: "patched", config: c)) }
        }
        var o = RunOptions(scenario: "sync-mmu-race", variant: "patched", config: SyncMMUScenario.race.defaultConfig(mode: .deterministic))
        o.schedules = 0
        #expect(throws: InputError.self) { try Runner(o) }
    }

    @Test(arguments: ["", "garbage", "{}", "{\"format\":\"kvmsim-trace\"}", "[1,2,3]"])
    func malformedTraceFiles(contents: String) {
        let p = tmp(contents)
        defer { try? FileManager.default.removeItem(atPath: p) }
        #expect(throws: InputError.self) { try TraceFile.load(from: p) }
    }

    @Test func missingTraceFile() {
        #expect(throws: InputError.self) { try TraceFile.load(from: "/nonexistent/kvmsim.trace.json") }
    }

    @Test func inconsistentTraceFiles() throws {
        let c = SyncMMUScenario.race.defaultConfig(mode: .deterministic)
        let good = TraceFile(scenario: "sync-mmu-race", variant: "patched", seed: 1, schedule: 0, scheduleSeed: 1, strategy: .random,
                             depth: 3, config: c, actors: SyncMMUScenario.race.actorNames(c), decisions: [0, 1, 2], violation: nil)
        var variants: [TraceFile] = []
        var t = good; t.version = 99; variants.append(t)
        t = good; t.scenario = "nope"; variants.append(t)
        t = good; t.variant = "nope"; variants.append(t)
        t = good; t.actors = ["x"]; variants.append(t)
        t = good; t.decisions = [0, 200]; variants.append(t)
        t = good; t.config.cpus = 0; variants.append(t)
        for bad in variants {
            let p = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-bad-\(UUID().uuidString).json").path
            try bad.write(to: p)
            defer { try? FileManager.default.removeItem(atPath: p) }
            #expect(throws: InputError.self) { try TraceFile.load(from: p) }
        }
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-good-\(UUID().uuidString).json").path
        try good.write(to: p)
        defer { try? FileManager.default.removeItem(atPath: p) }
        #expect(try TraceFile.load(from: p) == good)
    }
}

/// Every scenario either rejects the largest sizes the flags allow (one-line
/// InputError) or runs with them: never a trap.
@Suite struct LargeConfigurationTests {
    @Test(arguments: ScenarioRegistry.all.map(\.name))
    func largestPagesAreRejectedOrRun(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        for pages in [1 << 20, 4097, 513, 9] {
            var c = s.defaultConfig(mode: .deterministic)
            c.pages = pages
            var o = RunOptions(scenario: scenario, variant: s.variants[0], config: c)
            o.schedules = 1
            do {
                let r = try Runner(o).run()
                #expect(r.schedules == 1)
            } catch {
                #expect(!error.message.isEmpty && !error.message.contains("\n"))
            }
        }
    }
}
