// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
#if canImport(Glibc)
import Glibc
#endif

/// A long stress campaign over every scenario and variant (`kvmsim campaign`):
/// deterministic seeds and parallel stress, in turns, within a time budget, with
/// its state in a directory so that it resumes where it stopped, splits across
/// machines, and loses nothing when interrupted.
///
/// Two ways to split, which combine: `--shard I/N` gives each machine a slice
/// of the scenario/variant pairs; `--seed-shard I/N` gives each machine every
/// pair on its own seed stream (seeds I, I+N, I+2N, ...), so any number of
/// machines can share one pair and no seed runs twice. `merge` joins the
/// databases (Campaign+Merge.swift).
///
/// The database (`--db DIR`):
/// - `state.json`: per scenario/variant, the next deterministic and parallel
///   seed, schedules and seconds run, coverage-mark counts; every failure
///   (mode, seed, oracle, message, whether the regression suite expects it);
/// - `traces/`: the minimal trace of each deterministic failure, and of each
///   parallel failure reproduced deterministically (parallel units record at
///   access-level points while the failure would be new to the regression
///   suite or the pair has no parallel trace yet; a reproduction may take up
///   to `reproductionSeconds` of the unit).
/// The state is rewritten (write to a temporary file, then rename) after every
/// unit of work, so a killed campaign loses at most the unit it was running; an
/// interrupted unit's partial result is recorded too.
public enum Campaign {
    public struct PairState: Codable, Sendable {
        public var scenario: String
        public var variant: String
        /// The seeds the next units run; they step by the seed shard's count.
        public var nextDeterministicSeed: UInt64 = 1
        public var nextParallelSeed: UInt64 = 1
        public var schedules: Int = 0
        public var parallelSeconds: Double = 0
        public var parallelWork: Int = 0
        public var coverage: [String: Int] = [:]
        public var unreachedMarks: [String] = []
        /// Every seed run so far, per mode: one progression in a live database,
        /// one per source after `merge`. Invariant: no seed in two of them.
        public var deterministicSeeds: [SeedRun] = []
        public var parallelSeeds: [SeedRun] = []
        public var id: String { "\(scenario)/\(variant)" }

        /// Adds a run's (or another database's) coverage counts; the marks
        /// still at zero are the pair's unreached ones.
        mutating func addCoverage(_ counts: [String: Int]) {
            coverage.merge(counts, uniquingKeysWith: +)
            unreachedMarks = coverage.filter { $0.value == 0 }.map(\.key).sorted()
        }

        public init(scenario: String, variant: String, firstSeed: UInt64 = 1) {
            self.scenario = scenario
            self.variant = variant
            nextDeterministicSeed = firstSeed
            nextParallelSeed = firstSeed
        }

        enum CodingKeys: String, CodingKey {
            case scenario, variant, nextDeterministicSeed, nextParallelSeed, schedules, parallelSeconds, parallelWork
            case coverage, unreachedMarks, deterministicSeeds, parallelSeeds
        }

        /// Reads the state of every kvmsim that wrote format 1; one written before
        /// the seed lists existed ran seeds 1 ..< next, one shard of seeds.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            scenario = try c.decode(String.self, forKey: .scenario)
            variant = try c.decode(String.self, forKey: .variant)
            nextDeterministicSeed = try c.decode(UInt64.self, forKey: .nextDeterministicSeed)
            nextParallelSeed = try c.decode(UInt64.self, forKey: .nextParallelSeed)
            guard (1...SeedRun.maxSeed).contains(nextDeterministicSeed), (1...SeedRun.maxSeed).contains(nextParallelSeed) else {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "next seeds out of range"))
            }
            schedules = try c.decode(Int.self, forKey: .schedules)
            parallelSeconds = try c.decode(Double.self, forKey: .parallelSeconds)
            parallelWork = try c.decode(Int.self, forKey: .parallelWork)
            coverage = try c.decode([String: Int].self, forKey: .coverage)
            unreachedMarks = try c.decode([String].self, forKey: .unreachedMarks)
            deterministicSeeds = try c.decodeIfPresent([SeedRun].self, forKey: .deterministicSeeds)
                ?? SeedRun.legacy(next: nextDeterministicSeed)
            parallelSeeds = try c.decodeIfPresent([SeedRun].self, forKey: .parallelSeeds) ?? SeedRun.legacy(next: nextParallelSeed)
        }
    }

    /// Seeds `first, first + stride, ...`: `count` of them.
    public struct SeedRun: Codable, Sendable, Equatable {
        public var first: UInt64
        public var stride: UInt64
        public var count: Int

        public func contains(_ seed: UInt64) -> Bool {
            seed >= first && (seed - first) % stride == 0 && (seed - first) / stride < UInt64(count)
        }
        public var seeds: [UInt64] { (0..<count).map { first + UInt64($0) * stride } }

        /// The last seed of the run (count >= 1, checked when decoded).
        var last: UInt64 { first + UInt64(count - 1) * stride }

        /// The first seed both runs hold, if any. The common seeds of two
        /// progressions recur every lcm(strides), so at most
        /// (smaller stride / gcd) terms of the larger-stride run need a look.
        public func firstCommon(with other: SeedRun) -> UInt64? {
            guard count > 0, other.count > 0 else { return nil }
            let (a, b) = stride >= other.stride ? (self, other) : (other, self)
            func gcd(_ x: UInt64, _ y: UInt64) -> UInt64 { y == 0 ? x : gcd(y, x % y) }
            let steps = b.stride / gcd(a.stride, b.stride) + 1
            var k: UInt64 = b.first > a.first ? (b.first - a.first + a.stride - 1) / a.stride : 0
            let end = min(UInt64(a.count), k &+ steps)
            while k < end {
                let seed = a.first + k * a.stride
                if seed > b.last { return nil }
                if b.contains(seed) { return seed }
                k += 1
            }
            return nil
        }

        public init(first: UInt64, stride: UInt64, count: Int) { self.first = first; self.stride = stride; self.count = count }

        /// Refuses runs no campaign writes: seeds from 1, a stride of at least
        /// 1, at least one seed, the last one representable.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            first = try c.decode(UInt64.self, forKey: .first)
            stride = try c.decode(UInt64.self, forKey: .stride)
            count = try c.decode(Int.self, forKey: .count)
            let span = UInt64(max(count, 1) - 1).multipliedReportingOverflow(by: stride)
            guard first >= 1, stride >= 1, count >= 1, !span.overflow, !first.addingReportingOverflow(span.partialValue).overflow else {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath,
                    debugDescription: "seed run {first \(first), stride \(stride), count \(count)} is not one a campaign writes"))
            }
        }
        enum CodingKeys: String, CodingKey { case first, stride, count }

        static func legacy(next: UInt64) -> [SeedRun] { next > 1 ? [SeedRun(first: 1, stride: 1, count: Int(next - 1))] : [] }
        /// Seeds past this never occur (a campaign runs far fewer units).
        static let maxSeed = UInt64(Int.max / 2)

        /// Appends `seed` to the last run if it continues it, else starts a run.
        static func record(_ seed: UInt64, stride: UInt64, in runs: inout [SeedRun]) {
            if let last = runs.last, last.stride == stride, last.first + UInt64(last.count) * stride == seed {
                runs[runs.count - 1].count += 1
            } else {
                runs.append(SeedRun(first: seed, stride: stride, count: 1))
            }
        }
    }

    public struct Failure: Codable, Sendable {
        public var scenario: String
        public var variant: String
        public var mode: ExecutionMode
        public var seed: UInt64
        public var schedule: Int?
        public var oracle: String
        public var message: String
        /// The regression suite expects this variant to fail (a known race).
        public var known: Bool
        /// Minimal trace, relative to the database: every deterministic failure,
        /// and a parallel one that was recorded and reproduced.
        public var trace: String?
        /// Parallel failures that were recorded: whether the deterministic
        /// search found a schedule failing the same oracle (nil otherwise).
        public var reproduced: Bool?
    }

    public struct State: Codable, Sendable {
        public var format = "kvmsim-campaign"
        public var version = State.currentVersion
        public static let currentVersion = 1
        public var shard: String?
        /// `--seed-shard I/N` of this database (nil: every seed, stride 1).
        public var seedShard: String?
        /// Set by `merge`: the databases this one joins. A merged database is a
        /// report; campaigns do not resume it.
        public var mergedFrom: [String]?
        public var pairs: [PairState] = []
        public var failures: [Failure] = []
        public var units = 0
        public var elapsedSeconds: Double = 0
    }

    public struct Options: Sendable {
        public var db: String
        public var seconds: Double
        public var shard: (index: Int, count: Int)?
        /// Every pair, on seeds index, index + count, ...
        public var seedShard: (index: Int, count: Int)?
        var seedStride: UInt64 { UInt64(seedShard?.count ?? 1) }
        var firstSeed: UInt64 { UInt64(seedShard?.index ?? 1) }
        /// Schedules per deterministic unit, seconds per parallel unit.
        public var schedulesPerUnit = 2000
        public var parallelSecondsPerUnit: Double = 5
        /// Budget of the deterministic search for a recorded parallel failure.
        public var reproductionSeconds: Double = 60
        /// Stops the campaign between units (and the unit it is running).
        public var stop: StopSignal = .never
        public init(db: String, seconds: Double) { self.db = db; self.seconds = seconds }
    }

    /// Every scenario/variant pair of this shard, at its first seed.
    static func pairs(shard: (index: Int, count: Int)?, firstSeed: UInt64 = 1) -> [PairState] {
        let all = ScenarioRegistry.all.flatMap { s in s.variants.map { PairState(scenario: s.name, variant: $0, firstSeed: firstSeed) } }
        guard let shard else { return all }
        return all.enumerated().filter { $0.offset % shard.count == shard.index - 1 }.map(\.element)
    }

    static func isKnown(_ scenario: String, _ variant: String) -> Bool {
        RegressionSuite.knownFailure(scenario, variant) != nil
    }

    static func statePath(_ db: String) -> String { (db as NSString).appendingPathComponent("state.json") }

    /// Reads a database's state.
    public static func load(db: String) throws(InputError) -> State {
        guard isDatabase(db) else { throw InputError("'\(db)' is not a kvmsim campaign database (it has no state.json)") }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: Data(contentsOf: URL(fileURLWithPath: statePath(db)))) }
        catch { throw InputError("'\(statePath(db))' is not a kvmsim campaign state: \(TraceFile.describe(error))") }
        guard state.format == "kvmsim-campaign" else { throw InputError("'\(statePath(db))' is not a kvmsim campaign state") }
        guard state.version == State.currentVersion else {
            throw InputError("'\(statePath(db))' is campaign format \(state.version); this kvmsim reads format \(State.currentVersion)")
        }
        return state
    }

    static func isDatabase(_ path: String) -> Bool { FileManager.default.fileExists(atPath: statePath(path)) }

    /// Loads the database, or starts one. A database of another shard or seed
    /// shard, or a merged one, is bad input.
    public static func open(_ o: Options) throws(InputError) -> State {
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: (o.db as NSString).appendingPathComponent("traces"), withIntermediateDirectories: true) }
        catch { throw InputError("cannot create campaign database '\(o.db)': \(error.localizedDescription)") }
        let shardText = o.shard.map { "\($0.index)/\($0.count)" }
        let seedShardText = o.seedShard.map { "\($0.index)/\($0.count)" }
        var state = State(shard: shardText, seedShard: seedShardText)
        if isDatabase(o.db) {
            state = try load(db: o.db)
            if let sources = state.mergedFrom {
                throw InputError("campaign database '\(o.db)' is a merge of \(sources.count) databases; resume one of them instead")
            }
            guard state.shard == shardText else {
                throw InputError("campaign database '\(o.db)' belongs to shard \(state.shard ?? "all"), not \(shardText ?? "all")")
            }
            guard state.seedShard == seedShardText else {
                throw InputError("campaign database '\(o.db)' belongs to seed shard \(state.seedShard ?? "all"), not \(seedShardText ?? "all")")
            }
        }
        // New scenarios or variants since the database was made join at the first seed.
        for p in pairs(shard: o.shard, firstSeed: o.firstSeed) where !state.pairs.contains(where: { $0.id == p.id }) { state.pairs.append(p) }
        return state
    }

    public static func save(_ state: State, db: String) throws(InputError) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let tmp = statePath(db) + ".tmp"
        do { try enc.encode(state).write(to: URL(fileURLWithPath: tmp)) }
        catch { throw InputError("cannot write '\(tmp)': \(error.localizedDescription)") }
        // rename(2) replaces the old state atomically.
        guard rename(tmp, statePath(db)) == 0 else { throw InputError("cannot replace '\(statePath(db))': \(String(cString: strerror(errno)))") }
    }

    /// Runs units round-robin over the pairs, deterministic and parallel in turn,
    /// until the time is up or a signal arrives. `progress` gets one line per unit.
    public static func run(_ o: Options, progress: (String) -> Void = { _ in }) throws(InputError) -> State {
        var state = try open(o)
        let start = Date()
        let mine = Set(pairs(shard: o.shard).map(\.id))
        let active = state.pairs.indices.filter { mine.contains(state.pairs[$0].id) }
        guard !active.isEmpty else { return state }
        var turn = state.units
        while Date().timeIntervalSince(start) < o.seconds && !o.stop.isRaised {
            let i = active[turn % active.count]
            let parallel = (turn / active.count) % 2 == 1
            turn += 1
            var p = state.pairs[i]
            let mode: ExecutionMode = parallel ? .parallel : .deterministic
            var opts = try RunOptions(scenario: p.scenario, variant: p.variant, mode: mode)
            opts.stop = o.stop
            let left = o.seconds - Date().timeIntervalSince(start)
            if parallel {
                opts.seed = p.nextParallelSeed
                opts.seconds = max(0.1, min(o.parallelSecondsPerUnit, left))
                // Record (and reproduce) while a failure would be news: a new
                // race, or a known one with no parallel trace kept yet.
                let hasParallelTrace = state.failures.contains {
                    $0.scenario == p.scenario && $0.variant == p.variant && $0.mode == .parallel && $0.trace != nil
                }
                if !isKnown(p.scenario, p.variant) || !hasParallelTrace {
                    opts.recordTrace = true
                    opts.points = .accesses
                    opts.lengths = RunOptions.recordingLengths
                    opts.reproductionSeconds = o.reproductionSeconds
                }
            } else {
                opts.seed = p.nextDeterministicSeed
                opts.schedules = o.schedulesPerUnit
                opts.seconds = max(0.1, left)
            }
            let runner = try Runner(opts)
            let r = runner.run()
            if parallel {
                SeedRun.record(opts.seed, stride: o.seedStride, in: &p.parallelSeeds)
                p.nextParallelSeed += o.seedStride
                p.parallelSeconds += r.elapsedSeconds
                p.parallelWork += r.schedules
            } else {
                SeedRun.record(opts.seed, stride: o.seedStride, in: &p.deterministicSeeds)
                p.nextDeterministicSeed += o.seedStride
                p.schedules += r.schedules
            }
            p.addCoverage(r.coverage)
            var lastTrace: String? = nil
            if let v = r.firstViolation {
                var tracePath: String? = nil
                if let t = runner.failingTrace {
                    // A reproduced parallel trace is shrunk already.
                    let name = "traces/\(p.scenario)--\(p.variant)--\(parallel ? "parallel-" : "")seed\(opts.seed).trace.json"
                    let minimal = parallel ? t : (try? Shrinker.shrink(t, maxReplays: 1000).trace) ?? t
                    do { try minimal.write(to: (o.db as NSString).appendingPathComponent(name)); tracePath = name } catch {}
                }
                state.failures.append(Failure(scenario: p.scenario, variant: p.variant, mode: mode, seed: opts.seed,
                                              schedule: parallel ? nil : r.firstViolationSchedule, oracle: v.oracle, message: v.message,
                                              known: isKnown(p.scenario, p.variant), trace: tracePath, reproduced: r.reproduced))
                lastTrace = tracePath
            }
            state.pairs[i] = p
            state.units += 1
            state.elapsedSeconds += r.elapsedSeconds
            try save(state, db: o.db)
            let what = parallel ? String(format: "%.1f s parallel", r.elapsedSeconds) : "\(r.schedules) schedules"
            var verdict = r.firstViolation.map { "VIOLATION \($0.oracle)" + (isKnown(p.scenario, p.variant) ? " (known)" : " (NEW)") } ?? "clean"
            if r.firstViolation != nil {
                if let lastTrace { verdict += ", trace \((o.db as NSString).appendingPathComponent(lastTrace))" }
                else if r.reproduced == false { verdict += ", not reproduced deterministically" }
            }
            let remaining = max(0, o.seconds - Date().timeIntervalSince(start))
            progress(String(format: "[%6.0fs] %@ seed %llu: %@, %@ (unit %d, %d failures, %.0f s left)", Date().timeIntervalSince(start),
                            p.id, opts.seed, what, verdict, state.units, state.failures.count, remaining))
        }
        return state
    }

    /// The human summary.
    public static func summary(_ s: State) -> String {
        var lines = ["campaign\(s.shard.map { " shard \($0)" } ?? "")\(s.seedShard.map { " seed shard \($0)" } ?? "")"
                     + "\(s.mergedFrom.map { " (merge of \($0.count) databases)" } ?? ""): \(s.units) units, \(String(format: "%.0f", s.elapsedSeconds)) s of runs"]
        for p in s.pairs {
            var l = "  \(p.id): \(p.schedules) schedules, \(String(format: "%.0f", p.parallelSeconds)) s parallel"
            let f = s.failures(of: p)
            if !f.isEmpty { l += ", \(f.count) failing seed(s)" + (isKnown(p.scenario, p.variant) ? " (known race)" : " (NEW)") }
            if !p.unreachedMarks.isEmpty { l += "; never reached: \(p.unreachedMarks.joined(separator: "; "))" }
            lines.append(l)
        }
        let new = s.failures.filter { !$0.known }
        lines.append("\(s.failures.count) failures recorded, \(new.count) not known to the regression suite")
        return lines.joined(separator: "\n")
    }
}
