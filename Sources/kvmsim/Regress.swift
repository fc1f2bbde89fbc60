// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

/// Writes a regress report as a table, JSON, KTAP and/or JUnit, and exits 1 on a mismatch.
/// `suite`: the cases a KTAP report accounts for (those it lacks are SKIP).
func finishRegress(_ report: RegressReport, json: Bool, tap: Bool = false, suite: [SuiteCase] = [], tracesDir: String? = nil,
                   junit: String?) throws {
    if let junit {
        do { try report.junit.write(toFile: junit, atomically: true, encoding: .utf8) }
        catch { throw InputError("cannot write '\(junit)': \(error.localizedDescription)") }
    }
    if tap { FileHandle.standardOutput.write(report.ktap(suite: suite, tracesDir: tracesDir ?? "Tests/Traces").data(using: .utf8)!) }
    else if json { printJSON(report) } else { print(report.table) }
    if interruption.isRaised { throw ExitCode(128 + interruption.signal) }
    if report.failed > 0 { throw ExitCode(1) }
}

struct Regress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the race regression suite: every known race on its pre-fix code, every fix held to.",
        discussion: "Exit 1 if any case's verdict differs from its expectation.")
    @Flag(help: "Print one JSON object with a `cases` array.") var json = false
    @Flag(help: "Print KTAP version 1 (as kselftest and KUnit do): a test per scenario, a subtest per case, SKIP for cases in other shards.") var tap = false
    @Option(help: "Also write JUnit XML here (one testcase per case).") var junit: String?
    @Option(help: "Cap the schedules of cases expected clean (violation cases keep their limit).") var budget: Int?
    @Option(help: "Run the I-th of N disjoint slices of the cases (1-based), e.g. 2/4.") var shard: String?
    @Option(help: "Write each violation case's minimal trace into this directory: the smallest of its first four failing schedules of the same oracle, shrunk.") var writeTraces: String?
    @Option(help: "Only the cases of this scenario (repeatable).") var scenario: [String] = []
    @Flag(help: "List the cases and exit (with --json: one object with a `cases` array).") var list = false
    @Option(help: "Cases run at once, each on its own thread (default: the CPUs online). Verdicts do not depend on it.") var jobs: Int?

    struct ListedCase: Encodable {
        var id, scenario, variant: String
        var expected: Verdict
        var seed: UInt64
        var schedules: Int
        var strategy: StrategyKind
        var commit: KernelCommit?
        var note: String
        /// `kvmsim run SCENARIO --variant VARIANT <runFlags>` runs the case's configuration.
        var runFlags: [String]?
    }

    func run() throws {
        let sh = try shard.map { s throws(InputError) in try RegressionSuite.parseShard(s) }
        if tap && json { throw InputError("give --tap or --json, not both") }
        if let budget, budget < 1 { throw InputError("--budget must be at least 1 (got \(budget))") }
        if let jobs, jobs < 1 { throw InputError("--jobs must be at least 1 (got \(jobs))") }
        for s in scenario { _ = try ScenarioRegistry.named(s) }
        if list {
            let cases = RegressionSuite.cases(shard: sh, scenarios: Set(scenario))
            if json {
                printJSON(["cases": cases.map { ListedCase(id: $0.id, scenario: $0.scenario, variant: $0.variant, expected: $0.expected, seed: $0.seed,
                                                            schedules: $0.schedules, strategy: $0.strategy, commit: $0.commit, note: $0.note,
                                                            runFlags: $0.runFlags) }])
                return
            }
            for c in cases {
                print("\(c.id)  expects \(c.expected.rawValue), \(c.schedules) schedules\(c.commit.map { ", \($0)" } ?? ""): \(c.note)")
            }
            return
        }
        if let writeTraces {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: writeTraces, isDirectory: &isDir), isDir.boolValue else {
                throw InputError("--write-traces: '\(writeTraces)' is not a directory")
            }
        }
        installSignalHandlers()
        // On a terminal: which case runs now (overwritten by its result line).
        let showProgress = !json && !tap && isatty(2) == 1
        let report = try RegressionSuite.run(shard: sh, budget: budget, tracesDir: writeTraces, scenarios: Set(scenario),
                                             jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, stop: interruption,
                                             starting: { i, n, c in
            if showProgress { FileHandle.standardError.write("\r\u{1B}[Kcase \(i + 1) of \(n): \(c.id)".data(using: .utf8)!) }
        }) { r in
            if showProgress { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
            if !json && !tap {
                FileHandle.standardError.write("\(r.passed ? "ok  " : "FAIL") \(r.id): \(r.found.rawValue) (\(String(format: "%.1f", r.elapsedSeconds)) s)\n".data(using: .utf8)!)
            }
        }
        try finishRegress(report, json: json, tap: tap, suite: RegressionSuite.cases(shard: nil, scenarios: Set(scenario)),
                          tracesDir: writeTraces, junit: junit)
    }
}
