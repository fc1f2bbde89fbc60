// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// The race regression suite: every case every registered scenario declares
/// (every known race on its pre-fix code, every fix held to, every finding with
/// its real verdict), run deterministically from their seeds.
public enum RegressionSuite {
    /// Every case, scenario by scenario (registry order), each scenario's in
    /// the order it declares them.
    public static let cases: [SuiteCase] = ScenarioRegistry.all.flatMap(\.cases)

    /// Why (scenario, variant) is expected to fail, if it is: a violation case of
    /// the suite (in any configuration) or a finding seen only on real threads.
    public static func knownFailure(_ scenario: String, _ variant: String) -> String? {
        if let c = cases.first(where: { $0.scenario == scenario && $0.variant == variant && $0.expected == .violation }) { return c.note }
        return ScenarioRegistry.all.first { $0.name == scenario }?.parallelFindings.first { $0.variant == variant }?.note
    }

    /// Parses "I/N" (1 <= I <= N).
    public static func parseShard(_ s: String, flag: String = "--shard") throws(InputError) -> (index: Int, count: Int) {
        let parts = s.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(i) else {
            throw InputError("\(flag) must be I/N with 1 <= I <= N (got '\(s)')")
        }
        return (i, n)
    }

    /// The cases of shard `i` of `n` (every n-th case, starting at the i-th),
    /// optionally only those of some scenarios.
    public static func cases(shard: (index: Int, count: Int)?, scenarios: Set<String> = []) -> [SuiteCase] {
        let chosen = scenarios.isEmpty ? cases : cases.filter { scenarios.contains($0.scenario) }
        guard let shard else { return chosen }
        return chosen.enumerated().filter { $0.offset % shard.count == shard.index - 1 }.map(\.element)
    }

    /// The run options of a case; `budget` caps the schedules of a clean case
    /// (a violation case always gets its own limit: a smaller budget must not
    /// turn a known race into a false "fixed").
    public static func options(_ c: SuiteCase, budget: Int?, stop: StopSignal = .never) -> RunOptions {
        var o = RunOptions(c.selection, mode: .deterministic)
        o.seed = c.seed
        o.strategy = c.strategy
        o.depth = c.depth
        o.lengths = c.lengths
        o.schedules = c.expected == .clean ? min(c.schedules, budget ?? .max) : c.schedules
        o.stop = stop
        return o
    }

    /// Runs one case. With `tracesDir`, a violation's schedule is shrunk and its
    /// minimal trace written there (`SuiteCase.traceFileName`).
    public static func run(_ c: SuiteCase, budget: Int?, tracesDir: String? = nil, stop: StopSignal = .never) throws(InputError) -> CaseResult {
        let runner = try Runner(options(c, budget: budget, stop: stop))
        let r = runner.run()
        let found: Verdict = r.violations > 0 ? .violation : .clean
        if let tracesDir, let t = runner.failingTrace {
            let minimal = try Shrinker.shrink(t).trace
            let path = (tracesDir as NSString).appendingPathComponent(c.traceFileName)
            do { try minimal.write(to: path) } catch { throw InputError("cannot write '\(path)': \(error.localizedDescription)") }
        }
        return CaseResult(id: c.id, scenario: c.scenario, variant: c.variant, expected: c.expected, found: found,
                          passed: !r.interrupted && found == c.expected, schedules: r.schedules,
                          schedulesToFirstViolation: r.firstViolationSchedule.map { $0 + 1 }, oracle: r.firstViolation?.oracle,
                          elapsedSeconds: r.elapsedSeconds, interrupted: r.interrupted, note: c.note, commit: c.commit?.id)
    }

    /// Runs the suite (or a shard of it); stops after a case that was interrupted.
    public static func run(shard: (index: Int, count: Int)?, budget: Int?, tracesDir: String? = nil, scenarios: Set<String> = [],
                           stop: StopSignal = .never, starting: (_ index: Int, _ count: Int, SuiteCase) -> Void = { _, _, _ in },
                           progress: (CaseResult) -> Void = { _ in }) throws(InputError) -> RegressReport {
        for s in scenarios { _ = try ScenarioRegistry.named(s) }
        let start = Date()
        var results: [CaseResult] = []
        let chosen = cases(shard: shard, scenarios: scenarios)
        for (i, c) in chosen.enumerated() {
            if stop.isRaised { break }
            starting(i, chosen.count, c)
            let r = try run(c, budget: budget, tracesDir: tracesDir, stop: stop)
            results.append(r)
            progress(r)
            if r.interrupted { break }
        }
        return RegressReport(cases: results, elapsedSeconds: Date().timeIntervalSince(start),
                             shard: shard.map { "\($0.index)/\($0.count)" }, interrupted: stop.isRaised)
    }
}
