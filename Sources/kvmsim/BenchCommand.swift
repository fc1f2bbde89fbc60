// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec
import Bench

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed and memory, each figure beside its baseline, in one run (use a release build).")
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Shorter measurements and fewer seeds (noisier).") var quick = false
    @Option(help: ArgumentHelp("Measure only these figures (comma-separated).",
                               valueName: Bench.Figure.allCases.map(\.rawValue).joined(separator: "|")))
    var only: String?
    /// What the instructions figure runs under valgrind: one of figure 3's loops.
    @Option(help: .hidden) var loop: Bench.Loop?
    @Option(help: .hidden) var loopSchedules: Int?

    func run() throws {
        if let loop {
            guard only == nil, !json, !quick else { throw InputError("--loop runs one loop of figure 3 for the instructions figure: no --only, --json or --quick with it") }
            return try Bench.runLoop(loop, count: loopSchedules ?? 1000)
        }
        guard loopSchedules == nil else { throw InputError("--loop-schedules needs --loop") }
        var o = Bench.Options()
        o.quick = quick
        if let only {
            var picked = Set<Bench.Figure>()
            for name in only.split(separator: ",", omittingEmptySubsequences: false) {
                guard let f = Bench.Figure(rawValue: String(name)) else {
                    throw InputError("unknown figure '\(name)' for --only (one of: \(Bench.Figure.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                picked.insert(f)
            }
            o.figures = picked
        }
        let r = try Bench.run(o) { line in if !json { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) } }
        if json {
            FileHandle.standardOutput.write(Bench.json(r, figures: o.figures))
            FileHandle.standardOutput.write("\n".data(using: .utf8)!)
        } else {
            print(Bench.table(r, figures: o.figures))
        }
    }
}

extension Bench.Loop: ExpressibleByArgument {}
