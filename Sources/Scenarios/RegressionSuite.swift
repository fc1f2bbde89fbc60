// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

/// A run's verdict: some oracle fired, or none did.
public enum Verdict: String, Codable, Sendable {
    case violation, clean
}

/// One case of the race regression suite: a scenario and variant, run
/// deterministically from a seed for a number of schedules, with the verdict
/// the model really gives (a known race found, a fix holding, or a finding in
/// a `patched` variant kept with its real verdict).
public struct RegressionCase: Codable, Sendable {
    public var scenario: String
    public var variant: String
    public var expected: Verdict
    public var seed: UInt64 = 1
    /// Schedules to run; a violation case stops at its first violation.
    public var schedules: Int
    public var strategy: StrategyKind = .random
    /// Configuration overrides of the scenario's deterministic default.
    public var pages: Int? = nil
    public var vcpus: Int? = nil
    public var vcpusPerVcore: Int? = nil
    /// Why the case exists, one line.
    public var note: String

    /// Unique name: scenario/variant, plus the overrides if any.
    public var id: String {
        var s = "\(scenario)/\(variant)"
        if let pages { s += " pages=\(pages)" }
        if let vcpus { s += " vcpus=\(vcpus)" }
        if let vcpusPerVcore { s += " vcpus-per-vcore=\(vcpusPerVcore)" }
        if seed != 1 { s += " seed=\(seed)" }
        return s
    }
}

/// What one case found.
public struct CaseResult: Codable, Sendable {
    public var id: String
    public var scenario: String
    public var variant: String
    public var expected: Verdict
    public var found: Verdict
    public var passed: Bool
    public var schedules: Int
    public var schedulesToFirstViolation: Int?
    public var oracle: String?
    public var elapsedSeconds: Double
    public var interrupted: Bool
    public var note: String
}

/// A `kvmsim regress` report (also what `kvmsim merge` reads and writes).
public struct RegressReport: Codable, Sendable {
    public var format = "kvmsim-regress"
    public var version = 1
    public var cases: [CaseResult]
    public var passed: Int
    public var failed: Int
    public var elapsedSeconds: Double
    /// "I/N" when this report is one shard, nil for a whole or merged run.
    public var shard: String?
    public var interrupted: Bool

    init(cases: [CaseResult], elapsedSeconds: Double, shard: String?, interrupted: Bool) {
        self.cases = cases
        passed = cases.filter(\.passed).count
        failed = cases.count - passed
        self.elapsedSeconds = elapsedSeconds
        self.shard = shard
        self.interrupted = interrupted
    }
}

/// The suite: every known race on its pre-fix code, every fix held to.
public enum RegressionSuite {
    public static let cases: [RegressionCase] = [
        RegressionCase(scenario: "sync-mmu-race", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 004: no MMU notifiers, the host frees a page the GPA table still maps"),
        RegressionCase(scenario: "sync-mmu-race", variant: "no-retry", expected: .violation, schedules: 100_000,
                       note: "seed 004 without its mmu_notifier_retry() check (mutation)"),
        RegressionCase(scenario: "sync-mmu-race", variant: "patched", expected: .clean, schedules: 20_000,
                       note: "seed 004 holds against one host event source in deterministic search (parallel runs find the change_pte race)"),
        RegressionCase(scenario: "sync-mmu-race", variant: "no-change-pte", expected: .clean, schedules: 20_000,
                       note: "seed 004 without KVM's change_pte handler"),
        RegressionCase(scenario: "sync-mmu-stress", variant: "patched", expected: .violation, seed: 3, schedules: 2_000,
                       pages: 2, vcpus: 1, note: "finding: change_pte during a concurrent invalidation (docs/mechanisms/sync-mmu.md)"),
        RegressionCase(scenario: "sync-mmu-stress", variant: "no-change-pte", expected: .clean, schedules: 1_000,
                       note: "every host mm event at once, change_pte handler gone"),
        RegressionCase(scenario: "sync-mmu-stress", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 004's race under every host mm event"),
        RegressionCase(scenario: "asid-lazy-regen", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 000: lazy user ASID regeneration misses other CPUs"),
        RegressionCase(scenario: "asid-lazy-regen", variant: "patched", expected: .violation, schedules: 100_000,
                       note: "finding: seed 000's diff zeroes guest_user_asid[cpu], not [i] (docs/mechanisms/asid.md)"),
        RegressionCase(scenario: "asid-lazy-regen", variant: "patched-intended", expected: .clean, schedules: 20_000,
                       note: "seed 000 as its message describes it"),
        RegressionCase(scenario: "asid-lazy-regen", variant: "upstream-4.11", expected: .clean, schedules: 20_000,
                       note: "the v4.11 ASID code"),
        RegressionCase(scenario: "asid-lazy-regen", variant: "propagate-only", expected: .violation, schedules: 100_000,
                       note: "half of seed 000 (propagate to other CPUs, keep the vcpu_load reset): hole (b) alone"),
        RegressionCase(scenario: "asid-lazy-regen", variant: "no-cancel-only", expected: .violation, schedules: 100_000,
                       note: "the other half (drop the vcpu_load reset, no propagation): hole (a) alone"),
        RegressionCase(scenario: "gva-flush", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 001: GVA page tables not flushed on guest ASID change"),
        RegressionCase(scenario: "gva-flush", variant: "patched", expected: .clean, schedules: 20_000,
                       note: "seed 001"),
        RegressionCase(scenario: "ppc-tlb-local", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 002: H_LOCAL on an SMP guest leaves a stale TLB entry to a freed page"),
        RegressionCase(scenario: "ppc-tlb-local", variant: "patched", expected: .clean, schedules: 20_000,
                       note: "seed 002: global_invalidates(), need_tlb_flush"),
        RegressionCase(scenario: "ppc-tlb-stress", variant: "patched", expected: .clean, schedules: 1_000,
                       note: "seed 002 with vcores moving and every host mm event"),
        RegressionCase(scenario: "ppc-tlb-stress", variant: "patched", expected: .clean, schedules: 1_000,
                       vcpus: 4, vcpusPerVcore: 4,
                       note: "seed 002 with a one-vcore guest: tlbiel and the need_tlb_flush entry flush as the vcore moves"),
        RegressionCase(scenario: "ppc-tlb-stress", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 002's races with vcores moving and every host mm event"),
        RegressionCase(scenario: "vpa-cross-register", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 003: another vcpu changes a running vcpu's DTL pointers"),
        RegressionCase(scenario: "vpa-cross-register", variant: "patched", expected: .clean, schedules: 20_000,
                       note: "seed 003: the owner switches areas in kvmppc_update_vpas()"),
        RegressionCase(scenario: "vpa-stress", variant: "patched", expected: .clean, schedules: 2_000,
                       note: "seed 003 under register/deregister storms of all three areas"),
        RegressionCase(scenario: "vpa-stress", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "seed 003's race under storms of all three areas"),
        RegressionCase(scenario: "mmu-seq-wrap", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "historical: a signed int mmu_seq snapshot past 2^31 retries forever"),
        RegressionCase(scenario: "mmu-seq-wrap", variant: "patched", expected: .clean, schedules: 20_000,
                       note: "historical: unsigned long mmu_seq"),
        RegressionCase(scenario: "steal-time-flush", variant: "pre-fix", expected: .violation, schedules: 100_000,
                       note: "historical: CVE-2019-3016, record_steal_time() overwrites KVM_VCPU_FLUSH_TLB"),
        RegressionCase(scenario: "steal-time-flush", variant: "patched", expected: .clean, schedules: 20_000,
                       note: "historical: xchg() on the guest's steal_time page"),
    ]

    /// Failures found only on real threads, where a deterministic case cannot pin
    /// them: (scenario, variant, why).
    public static let parallelFindings: [(scenario: String, variant: String, note: String)] = [
        ("sync-mmu-race", "patched", "finding: change_pte during the vcpu's own COW break and a host invalidation (docs/mechanisms/sync-mmu.md)"),
    ]

    /// Why (scenario, variant) is expected to fail, if it is: a violation case of
    /// the suite (in any configuration) or a finding seen only on real threads.
    public static func knownFailure(_ scenario: String, _ variant: String) -> String? {
        if let c = cases.first(where: { $0.scenario == scenario && $0.variant == variant && $0.expected == .violation }) { return c.note }
        return parallelFindings.first { $0.scenario == scenario && $0.variant == variant }?.note
    }

    /// Parses "I/N" (1 <= I <= N).
    public static func parseShard(_ s: String) throws(InputError) -> (index: Int, count: Int) {
        let parts = s.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(i) else {
            throw InputError("--shard must be I/N with 1 <= I <= N (got '\(s)')")
        }
        return (i, n)
    }

    /// The cases of shard `i` of `n` (every n-th case, starting at the i-th),
    /// optionally only those of some scenarios.
    public static func cases(shard: (index: Int, count: Int)?, scenarios: Set<String> = []) -> [RegressionCase] {
        let chosen = scenarios.isEmpty ? cases : cases.filter { scenarios.contains($0.scenario) }
        guard let shard else { return chosen }
        return chosen.enumerated().filter { $0.offset % shard.count == shard.index - 1 }.map(\.element)
    }

    /// The run options of a case; `budget` caps the schedules of a clean case
    /// (a violation case always gets its own limit: a smaller budget must not
    /// turn a known race into a false "fixed").
    public static func options(_ c: RegressionCase, budget: Int?) throws(InputError) -> RunOptions {
        var o = try RunOptions(scenario: c.scenario, variant: c.variant, mode: .deterministic)
        if let p = c.pages { o.config.pages = p }
        if let v = c.vcpus { o.config.vcpus = v }
        if let v = c.vcpusPerVcore { o.config.vcpusPerVcore = v }
        o.seed = c.seed
        o.strategy = c.strategy
        o.schedules = c.expected == .clean ? min(c.schedules, budget ?? .max) : c.schedules
        return o
    }

    /// Runs one case. With `tracesDir`, a violation's schedule is shrunk and its
    /// minimal trace written there as `<scenario>--<variant>.trace.json`.
    public static func run(_ c: RegressionCase, budget: Int?, tracesDir: String? = nil) throws(InputError) -> CaseResult {
        let runner = try Runner(try options(c, budget: budget))
        let r = runner.run()
        let found: Verdict = r.violations > 0 ? .violation : .clean
        if let tracesDir, let t = runner.failingTrace {
            let minimal = try Shrinker.shrink(t).trace
            let path = (tracesDir as NSString).appendingPathComponent("\(c.scenario)--\(c.variant).trace.json")
            do { try minimal.write(to: path) } catch { throw InputError("cannot write '\(path)': \(error.localizedDescription)") }
        }
        return CaseResult(id: c.id, scenario: c.scenario, variant: c.variant, expected: c.expected, found: found,
                          passed: !r.interrupted && found == c.expected, schedules: r.schedules,
                          schedulesToFirstViolation: r.firstViolationSchedule.map { $0 + 1 }, oracle: r.firstViolation?.oracle,
                          elapsedSeconds: r.elapsedSeconds, interrupted: r.interrupted, note: c.note)
    }

    /// Runs the suite (or a shard of it); stops after a case that was interrupted.
    public static func run(shard: (index: Int, count: Int)?, budget: Int?, tracesDir: String? = nil, scenarios: Set<String> = [],
                           progress: (CaseResult) -> Void = { _ in }) throws(InputError) -> RegressReport {
        for s in scenarios { _ = try ScenarioRegistry.named(s) }
        let start = Date()
        var results: [CaseResult] = []
        for c in cases(shard: shard, scenarios: scenarios) {
            if interruptSignal.load(ordering: .relaxed) != 0 { break }
            let r = try run(c, budget: budget, tracesDir: tracesDir)
            results.append(r)
            progress(r)
            if r.interrupted { break }
        }
        return RegressReport(cases: results, elapsedSeconds: Date().timeIntervalSince(start),
                             shard: shard.map { "\($0.index)/\($0.count)" },
                             interrupted: interruptSignal.load(ordering: .relaxed) != 0)
    }

    /// Joins shard reports into one. Bad or overlapping reports are an InputError.
    public static func merge(_ reports: [RegressReport]) throws(InputError) -> RegressReport {
        var seen = Set<String>()
        var all: [CaseResult] = []
        for r in reports {
            guard r.format == "kvmsim-regress", r.version == 1 else { throw InputError("not a kvmsim-regress version 1 report") }
            for c in r.cases {
                guard seen.insert(c.id).inserted else { throw InputError("case '\(c.id)' appears in more than one report") }
                all.append(c)
            }
        }
        let order = Dictionary(uniqueKeysWithValues: cases.enumerated().map { ($1.id, $0) })
        all.sort { (order[$0.id] ?? .max, $0.id) < (order[$1.id] ?? .max, $1.id) }
        return RegressReport(cases: all, elapsedSeconds: reports.reduce(0) { $0 + $1.elapsedSeconds }, shard: nil,
                             interrupted: reports.contains { $0.interrupted })
    }

    /// Reads a report written by `regress --json`.
    public static func load(_ path: String) throws(InputError) -> RegressReport {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw InputError("cannot read '\(path)': \(error.localizedDescription)") }
        do { return try JSONDecoder().decode(RegressReport.self, from: data) }
        catch { throw InputError("'\(path)' is not a kvmsim regress report: \(TraceFile.describe(error))") }
    }

    /// JUnit XML: one testsuite, one testcase per case, a failure for each case
    /// whose verdict differs from its expectation.
    public static func junit(_ r: RegressReport) -> String {
        func esc(_ s: String) -> String {
            var o = ""
            for ch in s.unicodeScalars {
                switch ch {
                case "&": o += "&amp;"
                case "<": o += "&lt;"
                case ">": o += "&gt;"
                case "\"": o += "&quot;"
                case "'": o += "&apos;"
                default:
                    // XML 1.0 allows tab, newline, carriage return and >= 0x20.
                    if ch.value == 0x9 || ch.value == 0xA || ch.value == 0xD || ch.value >= 0x20 { o.unicodeScalars.append(ch) }
                }
            }
            return o
        }
        let t = { (x: Double) in String(format: "%.3f", x) }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"kvmsim regress\" tests=\"\(r.cases.count)\" failures=\"\(r.failed)\" time=\"\(t(r.elapsedSeconds))\">\n"
        x += "  <testsuite name=\"kvmsim.regress\" tests=\"\(r.cases.count)\" failures=\"\(r.failed)\" errors=\"0\" skipped=\"0\" time=\"\(t(r.elapsedSeconds))\">\n"
        for c in r.cases {
            x += "    <testcase classname=\"kvmsim.\(esc(c.scenario))\" name=\"\(esc(c.id)) expects \(c.expected.rawValue)\" time=\"\(t(c.elapsedSeconds))\""
            if c.passed {
                x += ">\n      <system-out>\(esc(summary(c)))</system-out>\n    </testcase>\n"
            } else {
                let why = c.interrupted ? "interrupted" : "expected \(c.expected.rawValue), found \(c.found.rawValue)"
                x += ">\n      <failure message=\"\(esc(why))\" type=\"verdict\">\(esc(summary(c)))</failure>\n    </testcase>\n"
            }
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }

    static func summary(_ c: CaseResult) -> String {
        var s = "\(c.id): \(c.found.rawValue) after \(c.schedules) schedules"
        if let n = c.schedulesToFirstViolation { s += " (first violation in schedule \(n)\(c.oracle.map { ", \($0)" } ?? ""))" }
        return s + ". " + c.note
    }

    /// The human table.
    public static func table(_ r: RegressReport) -> String {
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        let w = max(4, r.cases.map(\.id.count).max() ?? 0)
        var lines = [pad("case", w) + "  " + pad("expected", 9) + "  " + pad("found", 9) + "  " + pad("to first", 8, right: true) + "  " + pad("time", 7, right: true)]
        for c in r.cases {
            let mark = c.passed ? "" : (c.interrupted ? "  INTERRUPTED" : "  MISMATCH")
            lines.append(pad(c.id, w) + "  " + pad(c.expected.rawValue, 9) + "  " + pad(c.found.rawValue, 9) + "  "
                         + pad(c.schedulesToFirstViolation.map(String.init) ?? "-", 8, right: true) + "  "
                         + pad(String(format: "%.1fs", c.elapsedSeconds), 7, right: true) + mark)
        }
        lines.append("\(r.passed) passed, \(r.failed) failed, \(String(format: "%.1f", r.elapsedSeconds)) s\(r.interrupted ? " (interrupted)" : "")")
        return lines.joined(separator: "\n")
    }
}
