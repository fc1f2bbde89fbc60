// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List scenarios, their variants (with the kernel commit each follows), oracles and knobs.")
    @Flag(help: "Print JSON.") var json = false

    struct Variant: Encodable { var name: String; var commit: KernelCommit? }
    struct Knob: Encodable { var flag, help: String; var values: [String]? }
    struct OracleEntry: Encodable { var name, invariant: String }
    struct Finding: Encodable { var variant, note: String }
    struct Entry: Encodable {
        var name, summary, docs: String
        var variants: [String]
        var oracles: [String]
        var variantCommits: [Variant]
        var oracleInvariants: [OracleEntry]
        var knobs: [Knob]
        /// Violations seen only on real threads (not yet a deterministic case).
        var parallelFindings: [Finding]
    }

    func run() throws {
        let entries = ScenarioRegistry.all.map { s in
            Entry(name: s.name, summary: s.summary, docs: s.docs, variants: s.variants, oracles: s.oracles.map(\.name),
                  variantCommits: s.variants.map { Variant(name: $0, commit: s.commit(ofVariant: $0)) },
                  oracleInvariants: s.oracles.map { OracleEntry(name: $0.name, invariant: $0.invariant) },
                  knobs: s.knobs.map { Knob(flag: $0.flag, help: $0.help, values: $0.values) },
                  parallelFindings: s.parallelFindings.map { Finding(variant: $0.variant, note: $0.note) })
        }
        if json { printJSON(["scenarios": entries]); return }
        for e in entries {
            print("\(e.name)\n  \(e.summary)")
            for v in e.variantCommits { print("  variant \(v.name): \(v.commit.map { "\($0)" } ?? "no kernel commit (a model form)")") }
            print("  oracles:  \(e.oracles.joined(separator: ", "))")
            if !e.knobs.isEmpty {
                print("  knobs:    \(e.knobs.map { "--\($0.flag)" + ($0.values.map { " " + $0.joined(separator: "|") } ?? " N") }.joined(separator: ", "))")
            }
            print("  docs:     \(e.docs)")
        }
    }
}
