// SPDX-License-Identifier: GPL-2.0-only
// kvmsim: the command line. Exit status 0: no violation; 1: violation; 2: bad input.
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec
import Bench

#if canImport(Glibc)
import Glibc
#endif

struct KVMSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvmsim",
        abstract: "An actor-based SMP simulator of Linux KVM's MMU and TLB protocols, for finding races.",
        version: KVMSimVersion.line,
        subcommands: [List.self, Run.self, Replay.self, Shrink.self, Regress.self, Merge.self, CampaignCommand.self, BenchCommand.self])
}

func printJSON<T: Encodable>(_ value: T) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    let data = try! enc.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write("\n".data(using: .utf8)!)
}

func printError(_ line: String) {
    FileHandle.standardError.write("kvmsim: \(line)\n".data(using: .utf8)!)
}

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

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a scenario and check its oracles.")
    @Argument(help: "Scenario name (see `kvmsim list`).") var scenario: String
    @Option(help: "Variant of the modelled kernel code.") var variant: String
    @Option(help: "deterministic or parallel.") var mode: String = "deterministic"
    @Option(help: "Seed of the run.") var seed: String = "1"
    @Option(help: "Deterministic: schedules to run. Parallel: work units (guest ops + host events).") var schedules: Int?
    @Option(help: "Stop after this many seconds.") var seconds: Double?
    @Option(help: "random or pct.") var strategy: String = "random"
    @Option(help: "PCT bug depth.") var depth: Int = 3
    @Option(help: "Switch actors (deterministic) or record passes (parallel with --trace-out) at named points, or also at every access to kernel memory: named or accesses (default named; accesses for parallel --trace-out).") var points: String?
    @Option(help: "Schedule (parallel --trace-out: episode) lengths as multiples of the scenario's quotas, used in turn (1 = the scenario's own; default 1,2,4,8, and 8,16,32 for parallel --trace-out).") var lengths: String?
    @Option(help: "Host CPUs.") var cpus: Int?
    @Option(help: "Virtual CPUs.") var vcpus: Int?
    @Option(help: "Guest pages.") var pages: Int?
    @Option(help: "Guest operations per vcpu in one deterministic schedule.") var opsPerVcpu: Int?
    @Option(help: "Host events per host event source in one deterministic schedule.") var hostEventsPerSource: Int?
    @Option(help: "PPC: hardware threads per core (sharing one TLB).") var threadsPerCore: Int?
    @Option(help: "PPC: vcpus per vcore.") var vcpusPerVcore: Int?
    @Option(help: "PPC: percent of the guest's invalidations that use H_LOCAL.") var hLocalPercent: Int?
    @Option(help: "MIPS GPA: index bits per GPA table level.") var tableBits: Int?
    @Option(help: "MIPS GPA: free emptied GPA tables after a grace period (rcu) or at once, as the kernel does (immediate).") var gpaTableFree: String?
    @Flag(help: "Keep running after the first violation.") var keepGoing = false
    @Flag(help: "Run each schedule twice and compare the traces (exit 1 at the first difference).") var checkDeterminism = false
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Write the first failing schedule to this trace file (parallel mode: reproduced deterministically first).") var traceOut: String?
    @Option(help: "Parallel with --trace-out: budget of the deterministic search for the failure, seconds.") var reproductionSeconds: Double = 60
    @Option(help: "Deterministic mode: fibers (default) or threads; the same seed gives the same schedule with either.") var backend: String?

    func run() throws {
        guard let m = ExecutionMode(rawValue: mode) else { throw InputError("--mode must be deterministic or parallel (got '\(mode)')") }
        var be = SimEngine.DeterministicBackend.preferred
        if let backend {
            guard let b = SimEngine.DeterministicBackend(rawValue: backend) else { throw InputError("--backend must be fibers or threads (got '\(backend)')") }
            be = b
        }
        guard let st = StrategyKind(rawValue: strategy) else { throw InputError("--strategy must be random or pct (got '\(strategy)')") }
        guard let sd = UInt64(seed) else { throw InputError("--seed must be a non-negative integer (got '\(seed)')") }
        if schedules != nil && seconds != nil { throw InputError("give --schedules or --seconds, not both") }
        var selection = try ScenarioRegistry.named(scenario).selection(variant: variant, mode: m)
        if let cpus { selection.sizes.cpus = cpus; selection.sizes.hostEventSources = min(selection.sizes.hostEventSources, cpus) }
        if let vcpus { selection.sizes.vcpus = vcpus }
        if let pages { selection.sizes.pages = pages }
        if let opsPerVcpu { selection.sizes.opsPerVCPU = opsPerVcpu }
        if let hostEventsPerSource { selection.sizes.hostEventsPerSource = hostEventsPerSource }
        for (flag, value) in [("threads-per-core", threadsPerCore), ("vcpus-per-vcore", vcpusPerVcore), ("h-local-percent", hLocalPercent), ("table-bits", tableBits)] {
            if let value { try selection.set(knob: flag, to: value) }
        }
        if let gpaTableFree { try selection.set(knob: "gpa-table-free", to: gpaTableFree) }
        var o = RunOptions(selection, mode: m)
        o.seed = sd; o.schedules = schedules; o.seconds = seconds
        o.strategy = st; o.depth = depth; o.keepGoing = keepGoing; o.checkDeterminism = checkDeterminism
        o.backend = be
        o.stop = interruption
        o.recordTrace = m == .parallel && traceOut != nil
        guard reproductionSeconds >= 0 else { throw InputError("--reproduction-seconds must not be negative") }
        o.reproductionSeconds = reproductionSeconds
        // A recording at accesses lines up with its replay (docs/architecture.md, "Parallel failures").
        o.points = o.recordTrace ? .accesses : .named
        if let points {
            guard let granularity = PointGranularity(rawValue: points) else { throw InputError("--points must be named or accesses (got '\(points)')") }
            o.points = granularity
        }
        o.lengths = o.recordTrace ? RunOptions.recordingLengths : RunOptions.searchLengths
        if let lengths {
            o.lengths = try lengths.split(separator: ",", omittingEmptySubsequences: false).map { part throws(InputError) in
                guard let f = Int(part) else { throw InputError("--lengths must be comma-separated integers (got '\(lengths)')") }
                return f
            }
        }
        let runner = try Runner(o)
        if m == .deterministic && be == .fibers, let why = SimEngine.DeterministicBackend.fibersUnavailableReason {
            printError("note: using the thread backend (same schedules, about 10x slower): \(why)")
        }
        installSignalHandlers()
        let showProgress = !json && isatty(1) == 1 && isatty(2) == 1
        if showProgress {
            runner.progress = { done, total, elapsed in
                guard elapsed > 1 else { return }
                var line = "\r\(m == .deterministic ? "schedules" : "work") \(done)"
                if let total { let f = Double(done) / Double(total); let n = Int(f * 30); line += "/\(total) [" + String(repeating: "#", count: n) + String(repeating: " ", count: 30 - n) + "]" }
                line += String(format: " %.1fs", elapsed)
                FileHandle.standardError.write(line.data(using: .utf8)!)
            }
        }
        let report = runner.run()
        if showProgress { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
        if let traceOut {
            if let t = runner.failingTrace {
                do { try t.write(to: traceOut) } catch { throw InputError("cannot write trace file '\(traceOut)': \(error.localizedDescription)") }
            } else if report.violations > 0 && report.reproduced == false {
                printError("the real-thread failure was not reproduced deterministically in \(report.reproductionSchedules ?? 0) schedules (\(String(format: "%.0f", report.reproductionSeconds ?? 0)) s): no trace written")
            } else if report.violations == 0 && !json {
                print("no violation: no trace written")
            }
        }
        if json { printJSON(report) } else { printHuman(report, trace: traceOut) }
        if interruption.isRaised { throw ExitCode(128 + interruption.signal) }
        if let m = report.determinismMismatch {
            if !json { print("NOT DETERMINISTIC: \(m)") }
            throw ExitCode(1)
        }
        if report.violations > 0 { throw ExitCode(1) }
    }

    func printHuman(_ r: RunReport, trace: String?) {
        print("\(r.scenario) --variant \(r.variant) --mode \(r.mode.rawValue) --seed \(r.seed): \(r.schedules) \(r.mode == .deterministic ? "schedules" : "work units") in \(String(format: "%.2f", r.elapsedSeconds)) s\(r.interrupted ? " (interrupted)" : "")")
        if let v = r.firstViolation {
            let whereFound = r.mode == .deterministic ? "schedule \(r.firstViolationSchedule ?? 0), step \(v.step)"
                : (r.episodes != nil ? "episode \(r.firstViolationSchedule ?? 0), on real threads" : "on real threads")
            print("VIOLATION \(v.oracle) in \(whereFound), \(v.actor): \(v.message)")
            if let trace, r.mode == .deterministic || r.reproduced == true {
                if r.mode == .parallel {
                    print("reproduced deterministically in \(r.reproductionSchedules ?? 0) schedules (\(String(format: "%.1f", r.reproductionSeconds ?? 0)) s), shrunk in \(String(format: "%.1f", r.shrinkSeconds ?? 0)) s")
                }
                print("trace written to \(trace); see it with: kvmsim replay \(trace)")
            }
        } else {
            print("no violation")
        }
        if r.violations > 1 {
            print("violations: " + r.violationsByOracle.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if !r.counters.isEmpty {
            print("counters: " + r.counters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if let h = r.traceHash { print("traceHash \(h)") }
    }
}

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
    @Option(help: "Shrink each violation found and write its minimal trace into this directory.") var writeTraces: String?
    @Option(help: "Only the cases of this scenario (repeatable).") var scenario: [String] = []
    @Flag(help: "List the cases and exit (with --json: one object with a `cases` array).") var list = false

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
        let report = try RegressionSuite.run(shard: sh, budget: budget, tracesDir: writeTraces, scenarios: Set(scenario), stop: interruption,
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

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Join `regress --shard --json` reports into one report.")
    @Argument(help: "Shard reports (JSON).") var files: [String]
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print KTAP version 1 (cases no report holds are SKIP).") var tap = false
    @Option(help: "Also write JUnit XML here.") var junit: String?

    func run() throws {
        guard !files.isEmpty else { throw InputError("give at least one report to merge") }
        var reports: [RegressReport] = []
        for f in files { reports.append(try RegressReport.load(f)) }
        if tap && json { throw InputError("give --tap or --json, not both") }
        try finishRegress(try RegressReport.merge(reports), json: json, tap: tap, suite: RegressionSuite.cases(shard: nil), junit: junit)
    }
}

struct CampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Long stress over every scenario and variant: deterministic seeds and parallel runs in turn, resumable.",
        discussion: "State and minimal traces of failures live in --db; run again with the same --db to resume.")
    @Option(help: "Campaign database directory (created if missing).") var db: String
    @Option(help: "Time budget of this invocation, seconds.") var seconds: Double
    @Option(help: "Run the I-th of N disjoint slices of the scenario/variant pairs, e.g. 2/4.") var shard: String?
    @Option(help: "Schedules per deterministic unit.") var schedulesPerUnit: Int = 2000
    @Option(help: "Seconds per parallel unit.") var parallelSeconds: Double = 5
    @Option(help: "Budget of the deterministic search that turns a parallel failure into a trace, seconds.") var reproductionSeconds: Double = 60
    @Flag(help: "Print the final state as JSON.") var json = false

    func run() throws {
        guard seconds > 0 && seconds <= 30 * 24 * 3600 else { throw InputError("--seconds must be greater than 0 and at most 30 days") }
        guard schedulesPerUnit >= 1 else { throw InputError("--schedules-per-unit must be at least 1") }
        guard parallelSeconds > 0 else { throw InputError("--parallel-seconds must be greater than 0") }
        guard reproductionSeconds >= 0 else { throw InputError("--reproduction-seconds must not be negative") }
        var o = Campaign.Options(db: db, seconds: seconds)
        o.shard = try shard.map { s throws(InputError) in try RegressionSuite.parseShard(s) }
        o.schedulesPerUnit = schedulesPerUnit
        o.parallelSecondsPerUnit = parallelSeconds
        o.reproductionSeconds = reproductionSeconds
        o.stop = interruption
        installSignalHandlers()
        let state = try Campaign.run(o) { line in if !json { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) } }
        if json { printJSON(state) } else { print(Campaign.summary(state)) }
        if interruption.isRaised { throw ExitCode(128 + interruption.signal) }
        if state.failures.contains(where: { !$0.known }) { throw ExitCode(1) }
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed and memory, each figure beside its baseline, in one run (use a release build).")
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Shorter measurements and fewer seeds (noisier).") var quick = false
    @Option(help: ArgumentHelp("Measure only these figures (comma-separated).",
                               valueName: Bench.Figure.allCases.map(\.rawValue).joined(separator: "|")))
    var only: String?

    func run() throws {
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

/// Raised by SIGINT / SIGTERM; every long command polls it and stops between
/// units of work, reporting what ran.
let interruption = StopSignal()

private func onSignal(_ sig: Int32) {
    interruption.raise(sig)
}

func installSignalHandlers() {
    signal(SIGINT, onSignal)
    signal(SIGTERM, onSignal)
}

// Parse and run; bad input of any kind is one line on stderr and exit status 2.
do {
    var command = try KVMSim.parseAsRoot()
    try command.run()
} catch let e as InputError {
    printError(e.message)
    exit(2)
} catch let e as ExitCode {
    exit(e.rawValue)
} catch {
    let code = KVMSim.exitCode(for: error)
    if code == .success {
        print(KVMSim.fullMessage(for: error))
        exit(0)
    }
    let message = KVMSim.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad input"
    printError(message)
    exit(2)
}
