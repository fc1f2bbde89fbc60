// SPDX-License-Identifier: GPL-2.0-only
import Foundation

extension Campaign.State {
    /// A pair passes unless it has a failure the regression suite does not
    /// know: a known race found again is the campaign working, not a failure.
    func passed(_ p: Campaign.PairState) -> Bool { !failures(of: p).contains { !$0.known } }
    func failures(of p: Campaign.PairState) -> [Campaign.Failure] {
        failures.filter { $0.scenario == p.scenario && $0.variant == p.variant }
    }
    /// Any unit ran for the pair (an interrupted one with no schedule counts:
    /// its seed is recorded as run).
    func ran(_ p: Campaign.PairState) -> Bool {
        !p.deterministicSeeds.isEmpty || !p.parallelSeeds.isEmpty || p.schedules > 0 || p.parallelSeconds > 0
    }

    /// Every pair of the registry (a campaign's report accounts for all of
    /// them, whatever its shard), then pairs of scenarios this kvmsim lacks.
    var reportPairs: [Campaign.PairState] {
        let mine = Dictionary(pairs.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let all = Campaign.pairs(shard: nil)
        let known = Set(all.map(\.id))
        return all.map { mine[$0.id] ?? $0 } + pairs.filter { !known.contains($0.id) }
    }

    static func describe(_ p: Campaign.PairState) -> String {
        let det = p.deterministicSeeds.reduce(0) { $0 + $1.count }, par = p.parallelSeeds.reduce(0) { $0 + $1.count }
        return "\(p.schedules) schedules on \(det) seeds, \(String(format: "%.1f", p.parallelSeconds)) s parallel on \(par) seeds"
    }

    static func describe(_ f: Campaign.Failure, db: String) -> String {
        var s = "\(f.mode.rawValue) seed \(f.seed)\(f.schedule.map { " schedule \($0)" } ?? ""): \(f.oracle)"
        s += f.known ? " (known race)" : " (NEW)"
        if let t = f.trace { s += ", minimal trace \((db as NSString).appendingPathComponent(t))" }
        else if f.reproduced == false { s += ", not reproduced deterministically" }
        return s
    }

    /// KTAP version 1, as `RegressReport.ktap`: a test per scenario, a subtest
    /// per scenario/variant pair, each pair's work and failures as diagnostics;
    /// a pair this campaign did not run (another shard) is SKIP.
    /// - Parameter db: the database's directory, to name trace paths.
    public func ktap(db: String) -> String {
        let scenarios = KTAP.groupedByScenario(reportPairs, \.scenario)
        var out = ["KTAP version 1", "1..\(scenarios.count)"]
        var pass = 0, fail = 0, skip = 0
        for (n, scenario) in scenarios.enumerated() {
            out += ["  KTAP version 1", "  # Subtest: \(scenario.name)", "  1..\(scenario.items.count)"]
            var failed = false, ran = false
            for (i, p) in scenario.items.enumerated() {
                let name = KTAP.name(p.id)
                guard self.ran(p) else {
                    out.append("  ok \(i + 1) \(name) # SKIP not run by this campaign")
                    skip += 1
                    continue
                }
                ran = true
                out.append("  # \(name): \(Self.describe(p))")
                for f in failures(of: p) { out.append("  # \(name): " + KTAP.name(Self.describe(f, db: db))) }
                let ok = passed(p)
                if ok { pass += 1 } else { fail += 1; failed = true }
                out.append("  \(ok ? "ok" : "not ok") \(i + 1) \(name)")
            }
            out.append("\(failed ? "not ok" : "ok") \(n + 1) \(scenario.name)\(ran ? "" : " # SKIP no pair of it run")")
        }
        out.append("# Totals: pass:\(pass) fail:\(fail) skip:\(skip)")
        return out.joined(separator: "\n") + "\n"
    }

    /// JUnit XML: a testcase per pair, a failure for each NEW failure, skipped
    /// for a pair not run.
    public func junit(db: String) -> String {
        let esc = JUnitXML.escape
        let all = reportPairs
        let failedCount = all.filter { ran($0) && !passed($0) }.count
        let skipped = all.filter { !ran($0) }.count
        let t = String(format: "%.3f", elapsedSeconds)
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"kvmsim campaign\" tests=\"\(all.count)\" failures=\"\(failedCount)\" time=\"\(t)\">\n"
        x += "  <testsuite name=\"kvmsim.campaign\" tests=\"\(all.count)\" failures=\"\(failedCount)\" errors=\"0\" skipped=\"\(skipped)\" time=\"\(t)\">\n"
        for p in all {
            x += "    <testcase classname=\"kvmsim.\(esc(p.scenario))\" name=\"\(esc(p.id))\" time=\"\(String(format: "%.3f", p.parallelSeconds))\">\n"
            let lines = [Self.describe(p)] + failures(of: p).map { Self.describe($0, db: db) }
            if !ran(p) {
                x += "      <skipped message=\"not run by this campaign\"/>\n"
            } else if !passed(p) {
                let new = failures(of: p).filter { !$0.known }
                x += "      <failure message=\"\(esc("\(new.count) failure(s) the regression suite does not know"))\" type=\"new-failure\">"
                x += esc(lines.joined(separator: "\n")) + "</failure>\n"
            } else {
                x += "      <system-out>\(esc(lines.joined(separator: "\n")))</system-out>\n"
            }
            x += "    </testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }
}
