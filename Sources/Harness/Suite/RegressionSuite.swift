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
        o.points = c.points
        o.schedules = c.expected == .clean ? min(c.schedules, budget ?? .max) : c.schedules
        o.stop = stop
        return o
    }

    /// Failing schedules `regress --write-traces` shrinks per case, keeping
    /// the smallest result: a minimal trace is only as short as the schedule
    /// it was cut from allows (the shrinker deletes decisions; it does not
    /// reorder them), and the first failing schedule of a long case is often
    /// one of its longest.
    public static let shrinkCandidates = 4

    /// Runs one case. With `tracesDir`, a violation's minimal trace is
    /// written there (`SuiteCase.traceFileName`): `smallestMinimalTrace`.
    /// The verdict and the report come from the case's own run, as without.
    public static func run(_ c: SuiteCase, budget: Int?, tracesDir: String? = nil, stop: StopSignal = .never) throws(InputError) -> CaseResult {
        let runner = try Runner(options(c, budget: budget, stop: stop))
        let r = runner.run()
        let found: Verdict = r.violations > 0 ? .violation : .clean
        if let tracesDir, let first = runner.failingTrace {
            let minimal = try smallestMinimalTrace(c, first: first, stop: stop)
            let path = (tracesDir as NSString).appendingPathComponent(c.traceFileName)
            do { try minimal.write(to: path) } catch { throw InputError("cannot write '\(path)': \(error.localizedDescription)") }
        }
        return CaseResult(id: c.id, scenario: c.scenario, variant: c.variant, expected: c.expected, found: found,
                          passed: !r.interrupted && found == c.expected, schedules: r.schedules,
                          schedulesToFirstViolation: r.firstViolationSchedule.map { $0 + 1 }, oracle: r.firstViolation?.oracle,
                          elapsedSeconds: r.elapsedSeconds, interrupted: r.interrupted, note: c.note, commit: c.commit?.id)
    }

    /// The smallest minimal trace (fewest steps, then preemptions) among the
    /// case's first `shrinkCandidates` failing schedules whose first
    /// violation is `first`'s oracle (the case's race: a later schedule can
    /// break another check first). The candidates come from a second run of
    /// the case, bounded by four times the schedules the first failure took
    /// (at least 1,000): a rare race's budget can be a million schedules. The
    /// first failure must shrink; a later one that does not is skipped.
    static func smallestMinimalTrace(_ c: SuiteCase, first: TraceFile, stop: StopSignal) throws(InputError) -> TraceFile {
        var best = try Shrinker.shrink(first)
        var o = options(c, budget: nil, stop: stop)
        o.schedules = min(c.schedules, max(1_000, 4 * (first.schedule + 1)))
        let candidates = try Runner(o)
        candidates.failingTracesToKeep = shrinkCandidates
        _ = candidates.run()
        for t in candidates.failingTraces where t.schedule != first.schedule && t.violation?.oracle == first.violation?.oracle {
            guard let m = try? Shrinker.shrink(t) else { continue }
            if (m.steps, m.preemptions) < (best.steps, best.preemptions) { best = m }
        }
        return best.trace
    }

    /// Runs the suite (or a shard of it); stops after a case that was interrupted.
    ///
    /// `jobs` cases run at once, each on its own thread (a deterministic case
    /// is one thread whatever its actors: its fibers and scheduler state are
    /// thread-local, so cases do not share anything but the stop signal). The
    /// report lists the cases in declaration order whatever order they finish
    /// in; `starting` and `progress` are called one at a time, in the order
    /// cases start and finish.
    public static func run(shard: (index: Int, count: Int)?, budget: Int?, tracesDir: String? = nil, scenarios: Set<String> = [],
                           jobs: Int = 1, stop: StopSignal = .never,
                           starting: @escaping (_ index: Int, _ count: Int, SuiteCase) -> Void = { _, _, _ in },
                           progress: @escaping (CaseResult) -> Void = { _ in }) throws(InputError) -> RegressReport {
        for s in scenarios { _ = try ScenarioRegistry.named(s) }
        let start = Date()
        let chosen = cases(shard: shard, scenarios: scenarios)
        let queue = CaseQueue(count: chosen.count)
        // The callbacks are not Sendable: only ever called under the queue's lock.
        nonisolated(unsafe) let starting = starting
        nonisolated(unsafe) let progress = progress
        let worker: @Sendable () -> Void = {
            while true {
                guard let i = queue.next(stop: stop, { i in starting(i, chosen.count, chosen[i]) }) else { return }
                let r: Result<CaseResult, InputError>
                do throws(InputError) { r = .success(try run(chosen[i], budget: budget, tracesDir: tracesDir, stop: stop)) }
                catch { r = .failure(error) }
                queue.finish(i, r) { if case .success(let c) = r { progress(c) } }
            }
        }
        let helpers = (0..<max(0, min(jobs, chosen.count) - 1)).map { _ in
            let t = JoinableThread(worker)
            t.start()
            return t
        }
        worker()
        for t in helpers { t.join() }
        let results = try queue.results()
        return RegressReport(cases: results, elapsedSeconds: Date().timeIntervalSince(start),
                             shard: shard.map { "\($0.index)/\($0.count)" }, interrupted: stop.isRaised)
    }
}

/// The cases of one `RegressionSuite.run` handed out to its worker threads,
/// and their results in declaration order. Stops handing out cases after an
/// interrupted case or an error.
private final class CaseQueue: @unchecked Sendable {
    private struct State {
        var next = 0
        var done: [Result<CaseResult, InputError>?]
        var stopped = false
    }
    private let state: Locked<State>

    init(count: Int) { state = Locked(State(done: Array(repeating: nil, count: count))) }

    /// The next case to run, `onStart` called under the lock; nil when all are
    /// handed out or the run stops.
    func next(stop: StopSignal, _ onStart: (Int) -> Void) -> Int? {
        state.withLock { s in
            guard !s.stopped, !stop.isRaised, s.next < s.done.count else { return nil }
            defer { s.next += 1 }
            onStart(s.next)
            return s.next
        }
    }

    func finish(_ i: Int, _ r: Result<CaseResult, InputError>, _ onFinish: () -> Void) {
        state.withLock { s in
            s.done[i] = r
            switch r {
            case .success(let c): if c.interrupted { s.stopped = true }
            case .failure: s.stopped = true
            }
            onFinish()
        }
    }

    /// The results of the cases that ran, in declaration order; the first
    /// error, if a case threw.
    func results() throws(InputError) -> [CaseResult] {
        let done = state.withLock { $0.done }
        var out: [CaseResult] = []
        for r in done {
            switch r {
            case .success(let c)?: out.append(c)
            case .failure(let e)?: throw e
            case nil: continue
            }
        }
        return out
    }
}

/// A thread that can be waited for (Foundation's `Thread` cannot be joined).
private final class JoinableThread: @unchecked Sendable {
    private let body: @Sendable () -> Void
    private var thread: pthread_t?

    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        // Deterministic cases run on fibers with their own stacks; the thread's
        // own stack only needs to be as large as the main thread's default.
        pthread_attr_setstacksize(&attr, 8 << 20)
        var t = pthread_t()
        let rc = pthread_create(&t, &attr, { raw in
            let me = Unmanaged<JoinableThread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, box)
        pthread_attr_destroy(&attr)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = t
    }

    func join() { if let thread { pthread_join(thread, nil) } }
}
