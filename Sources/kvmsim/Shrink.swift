// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

struct Shrink: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reduce a failing trace to a minimal one (fewest steps, then fewest preemptions) that fails the same oracle.")
    @Argument(help: "Trace file with a violation.") var file: String
    @Option(help: "Where to write the minimal trace.") var out: String
    @Option(help: "At most this many candidate replays.") var maxReplays: Int = 4000
    @Flag(help: "Print JSON.") var json = false

    struct Out: Encodable { var originalSteps, steps, originalPreemptions, preemptions, replays: Int; var violation: Violation? }

    func run() throws {
        guard maxReplays > 0 else { throw InputError("--max-replays must be at least 1") }
        let t = try TraceFile.load(from: file)
        let r = try Shrinker.shrink(t, maxReplays: maxReplays)
        do { try r.trace.write(to: out) } catch { throw InputError("cannot write trace file '\(out)': \(error.localizedDescription)") }
        if json {
            printJSON(Out(originalSteps: r.originalSteps, steps: r.steps, originalPreemptions: r.originalPreemptions,
                          preemptions: r.preemptions, replays: r.replays, violation: r.trace.violation))
        } else {
            print("\(file): \(r.originalSteps) steps, \(r.originalPreemptions) preemptions -> \(out): \(r.steps) steps, \(r.preemptions) preemptions (\(r.replays) replays)")
            if let v = r.trace.violation { print("VIOLATION \(v.oracle) at step \(v.step) by \(v.actor): \(v.message)") }
        }
    }
}
