// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
@testable import Harness
import Catalog
import TestSupport

@Suite struct BadInputTests {
    func tmp(_ contents: String) -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-bad-\(UUID().uuidString).json").path
        FileManager.default.createFile(atPath: p, contents: contents.data(using: .utf8))
        return p
    }

    @Test func unknownScenarioVariantAndKnob() throws {
        #expect(throws: InputError.self) { try ScenarioRegistry.named("nope") }
        #expect(throws: InputError.self) { try RunOptions(scenario: "sync-mmu-race", variant: "nope", mode: .deterministic) }
        var s = try ScenarioRegistry.named("sync-mmu-race").selection(variant: "patched", mode: .deterministic)
        #expect(throws: InputError.self) { try s.set(knob: "threads-per-core", to: 2) }   // a PPC knob
        var p = try ScenarioRegistry.named("ppc-tlb-local").selection(variant: "patched", mode: .deterministic)
        try p.set(knob: "threads-per-core", to: 2)
        #expect(p.actorNames.count > 0)
    }

    @Test func badSizes() throws {
        for mutate in [{ (s: inout WorldSizes) in s.cpus = 0 }, { $0.vcpus = -1 }, { $0.pages = 1 << 40 }] {
            var o = try RunOptions(scenario: "sync-mmu-race", variant: "patched", mode: .deterministic)
            mutate(&o.selection.sizes)
            #expect(throws: InputError.self) { try Runner(o) }
        }
        var o = try RunOptions(scenario: "sync-mmu-race", variant: "patched", mode: .deterministic)
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
        let selection = try ScenarioRegistry.named("sync-mmu-race").selection(variant: "patched", mode: .deterministic)
        let good = TraceFile(selection: selection, seed: 1, schedule: 0, scheduleSeed: 1, strategy: .random, depth: 3,
                             actors: selection.actorNames, decisions: [0, 1, 2], violation: nil)
        let p = tmp("")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try good.write(to: p)
        #expect(try TraceFile.load(from: p) == good)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: p))) as? [String: Any])
        var config = try #require(object["config"] as? [String: Any])
        config["cpus"] = 0
        let bad: [[String: Any]] = [["version": 99], ["scenario": "nope"], ["variant": "nope"], ["actors": ["x"]],
                                    ["decisions": [0, 200]], ["config": config]]
        for change in bad {
            let mutated = object.merging(change) { _, new in new }
            let q = tmp(String(decoding: try JSONSerialization.data(withJSONObject: mutated), as: UTF8.self))
            defer { try? FileManager.default.removeItem(atPath: q) }
            #expect(throws: InputError.self, "\(change.keys.first ?? "")") { try TraceFile.load(from: q) }
        }
        // A format 1 trace (three steps a workload start) is refused, saying why.
        let v1 = tmp(String(decoding: try JSONSerialization.data(withJSONObject: object.merging(["version": 1]) { _, new in new }), as: UTF8.self))
        defer { try? FileManager.default.removeItem(atPath: v1) }
        #expect { try TraceFile.load(from: v1) } throws: { e in
            guard let e = e as? InputError else { return false }
            return e.message.contains("version 1 is not supported") && e.message.contains("record it again")
        }
    }
}

/// Traces written before the restructure carried every architecture's keys in
/// `config`: they still load (the other keys are ignored) and replay the same.
@Suite struct OldTraceFormatTests {
    @Test func extraConfigKeysOfOtherArchitecturesAreIgnored() throws {
        let url = CheckedInTraces.directory.appendingPathComponent("sync-mmu-race--no-retry.trace.json")
        let original = try TraceFile.load(from: url.path)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var config = try #require(object["config"] as? [String: Any])
        for (k, v) in ["asidBits": 8, "guestProcesses": 2, "threadsPerCore": 4, "vcpusPerVcore": 1, "hLocalPercent": 0] { config[k] = v }
        object["config"] = config
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-old-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: p) }
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: p))
        let old = try TraceFile.load(from: p)
        #expect(old == original)
        #expect(try Runner.replay(old).violations.first?.oracle == original.violation?.oracle)
    }
}

/// Every scenario either rejects the largest sizes the flags allow (one-line
/// InputError) or runs with them: never a trap.
@Suite struct LargeConfigurationTests {
    @Test(arguments: ScenarioRegistry.all.map(\.name))
    func largestPagesAreRejectedOrRun(scenario: String) throws {
        let s = try ScenarioRegistry.named(scenario)
        for pages in [1 << 20, 4097, 513, 9] {
            var o = try RunOptions(scenario: scenario, variant: s.variants[0], mode: .deterministic)
            o.selection.sizes.pages = pages
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
