// SPDX-License-Identifier: GPL-2.0-only
import Foundation

extension RegressReport {
    /// KTAP version 1 (Documentation/dev-tools/ktap.rst), as kselftest and KUnit
    /// print it and KernelCI and LKFT read it: one test per scenario, each with
    /// a nested subtest per case (indented two spaces), the case's oracle,
    /// schedules and minimal trace as diagnostic lines before its result. A case
    /// of `suite` this report did not run (another shard) is `ok ... # SKIP`; a
    /// scenario fails if one of its cases does.
    ///
    /// - Parameters:
    ///   - suite: the cases the output accounts for, in order (the whole
    ///     suite, or the scenarios asked for).
    ///   - tracesDir: where the minimal traces of violation cases are (the
    ///     checked-in `Tests/Traces`, or `regress --write-traces DIR`).
    public func ktap(suite: [SuiteCase], tracesDir: String = "Tests/Traces") -> String {
        let results = Dictionary(cases.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let scenarios = KTAP.groupedByScenario(suite, \.scenario)
        var out = ["KTAP version 1", "1..\(scenarios.count)"]
        for (n, scenario) in scenarios.enumerated() {
            out.append("  KTAP version 1")
            out.append("  # Subtest: \(scenario.name)")
            out.append("  1..\(scenario.items.count)")
            var failed = false, ran = false
            for (i, c) in scenario.items.enumerated() {
                let name = KTAP.name(c.id)
                guard let r = results[c.id] else {
                    out.append("  ok \(i + 1) \(name) # SKIP \(shard.map { "not in shard \($0)" } ?? "not in this report")")
                    continue
                }
                ran = true
                out.append("  # \(name): expected \(r.expected.rawValue), found \(r.found.rawValue) in \(r.schedules) schedules"
                           + (r.schedulesToFirstViolation.map { " (first violation in schedule \($0)\(r.oracle.map { ", oracle \($0)" } ?? ""))" } ?? ""))
                if r.found == .violation {
                    out.append("  # \(name): minimal trace \((tracesDir as NSString).appendingPathComponent(c.traceFileName))")
                }
                if r.interrupted { out.append("  # \(name): interrupted") }
                if !r.passed { failed = true }
                out.append("  \(r.passed ? "ok" : "not ok") \(i + 1) \(name)")
            }
            out.append("\(failed ? "not ok" : "ok") \(n + 1) \(scenario.name)\(ran ? "" : " # SKIP no case of it in this report")")
        }
        if interrupted { out.append("# interrupted: the cases after the interrupted one did not run") }
        out.append("# Totals: pass:\(passed) fail:\(failed) skip:\(suite.count - cases.count)")     // as kselftest ends
        return out.joined(separator: "\n") + "\n"
    }
}
