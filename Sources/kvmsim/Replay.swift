// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Replay a trace written by `run --trace-out`, with an account of the interleaving.")
    @Argument(help: "Trace file.") var file: String
    @Flag(help: "Also list every scheduling step.") var steps = false
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Also write Chrome/Perfetto trace-event JSON here (open it in ui.perfetto.dev).") var perfetto: String?

    struct Out: Encodable { var violations: [Violation]; var events: [SimEvent]; var mismatchStep: Int? }

    func run() throws {
        let t = try TraceFile.load(from: file)
        let r = try Runner.replay(t)
        if let m = r.mismatchStep { throw InputError("trace '\(file)' does not match the model at step \(m): the model or the trace changed") }
        if let perfetto {
            do { try PerfettoExport.make(t, r).write(to: URL(fileURLWithPath: perfetto)) }
            catch { throw InputError("cannot write '\(perfetto)': \(error.localizedDescription)") }
        }
        if json {
            printJSON(Out(violations: r.violations, events: r.events, mismatchStep: r.mismatchStep))
        } else {
            print("replay of \(t.scenario) --variant \(t.variant), seed \(t.seed), schedule \(t.schedule) (\(t.decisions.count) steps)")
            if steps { for (i, s) in r.steps.enumerated() { print(String(format: "  step %4d  %@ resumes at %@", i, s.actor, s.point)) } }
            for e in r.events { print(String(format: "  %4d  %-7@ %@", e.step, e.actor, e.text)) }
            if let v = r.violations.first { print("VIOLATION \(v.oracle) at step \(v.step) by \(v.actor): \(v.message)") } else { print("no violation") }
        }
        if !r.violations.isEmpty { throw ExitCode(1) }
    }
}
