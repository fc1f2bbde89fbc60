// SPDX-License-Identifier: GPL-2.0-only
import Foundation

extension Campaign {
    /// Joins campaign databases (of different `--shard` slices, different
    /// `--seed-shard` streams, or both) into one at `out`: per pair the sum of
    /// schedules, parallel seconds and coverage, every seed list, and the union
    /// of failures with their minimal traces (parallel reproductions included)
    /// copied into `out/traces`.
    ///
    /// Invariant checked: no seed of a pair ran in two sources (in one mode);
    /// sources that overlap (the same database twice, one seed shard run twice)
    /// would count work twice, and are bad input naming the seed.
    /// The merged database is a report: `campaign` refuses to resume it.
    public static func merge(_ dbs: [String], into out: String) throws(InputError) -> State {
        guard !dbs.isEmpty else { throw InputError("give at least one campaign database to merge") }
        let outPath = URL(fileURLWithPath: out).standardizedFileURL.path
        var sources: [(path: String, state: State)] = []
        for db in dbs {
            guard URL(fileURLWithPath: db).standardizedFileURL.path != outPath else {
                throw InputError("the merge's output '\(out)' is one of its inputs")
            }
            sources.append((db, try load(db: db)))
        }
        let fm = FileManager.default
        if isDatabase(out) { throw InputError("'\(out)' holds a campaign database already; merge into a new directory") }

        var merged = State()
        let shards = Set(sources.map { $0.state.shard ?? "all" })
        merged.shard = shards.count == 1 ? sources[0].state.shard : nil
        let seedShards = Set(sources.map { $0.state.seedShard ?? "all" })
        merged.seedShard = seedShards.count == 1 ? sources[0].state.seedShard : nil
        merged.mergedFrom = sources.map(\.path)
        // Pairs in the registry's order; pairs of scenarios this kvmsim lacks after.
        let order = Dictionary(pairs(shard: nil).enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        var byID: [String: PairState] = [:]
        var seenSeeds: [String: [(source: String, deterministic: [SeedRun], parallel: [SeedRun])]] = [:]
        for (path, state) in sources {
            for p in state.pairs {
                for earlier in seenSeeds[p.id, default: []] {
                    for (mode, mine, theirs) in [("deterministic", p.deterministicSeeds, earlier.deterministic),
                                                 ("parallel", p.parallelSeeds, earlier.parallel)] {
                        for a in mine { for b in theirs {
                            if let seed = a.firstCommon(with: b) {
                                throw InputError("seed \(seed) of \(p.id) (\(mode)) ran in both '\(earlier.source)' and '\(path)'")
                            }
                        } }
                    }
                }
                seenSeeds[p.id, default: []].append((path, p.deterministicSeeds, p.parallelSeeds))
                guard var m = byID[p.id] else { byID[p.id] = p; continue }
                m.nextDeterministicSeed = max(m.nextDeterministicSeed, p.nextDeterministicSeed)
                m.nextParallelSeed = max(m.nextParallelSeed, p.nextParallelSeed)
                m.schedules += p.schedules
                m.parallelSeconds += p.parallelSeconds
                m.parallelWork += p.parallelWork
                m.addCoverage(p.coverage)
                m.deterministicSeeds += p.deterministicSeeds
                m.parallelSeeds += p.parallelSeeds
                byID[p.id] = m
            }
            merged.units += state.units
            merged.elapsedSeconds += state.elapsedSeconds
        }
        merged.pairs = byID.values.sorted { (order[$0.id] ?? .max, $0.id) < (order[$1.id] ?? .max, $1.id) }

        // Every trace a source names is a file of its own traces/ directory.
        for (path, state) in sources {
            for f in state.failures {
                guard let t = f.trace else { continue }
                guard t.hasPrefix("traces/"), !t.split(separator: "/").contains(".."),
                      fm.fileExists(atPath: (path as NSString).appendingPathComponent(t)) else {
                    throw InputError("'\(statePath(path))' names a trace '\(t)' that is not in its traces/ directory")
                }
            }
        }
        if let existing = try? fm.contentsOfDirectory(atPath: out), !existing.isEmpty {
            throw InputError("'\(out)' is not empty; merge into a new directory")
        }

        // Checked and joined: only now is anything written, and a failure
        // removes what this merge made.
        let made = !fm.fileExists(atPath: out)
        do {
            return try write(merged, sources: sources, to: out)
        } catch {
            if made { try? fm.removeItem(atPath: out) } else { try? fm.removeItem(atPath: (out as NSString).appendingPathComponent("traces")) }
            throw error
        }
    }

    /// Copies the sources' traces into `out/traces` (renaming a clash), writes
    /// the merged state with its failures pointing at the copies, returns it.
    private static func write(_ state: State, sources: [(path: String, state: State)], to out: String) throws(InputError) -> State {
        var merged = state
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: (out as NSString).appendingPathComponent("traces"), withIntermediateDirectories: true) }
        catch { throw InputError("cannot create '\(out)': \(error.localizedDescription)") }
        for (n, (path, state)) in sources.enumerated() {
            for var f in state.failures {
                if let trace = f.trace {
                    let from = (path as NSString).appendingPathComponent(trace)
                    var name = trace
                    var copy = 1
                    while fm.fileExists(atPath: (out as NSString).appendingPathComponent(name)) {
                        // Seeds are disjoint, so names are; keep both if not.
                        name = "traces/source\(n + 1)-\(copy)-" + (trace as NSString).lastPathComponent
                        copy += 1
                    }
                    do { try fm.copyItem(atPath: from, toPath: (out as NSString).appendingPathComponent(name)); f.trace = name }
                    catch { throw InputError("cannot copy '\(from)' into '\(out)': \(error.localizedDescription)") }
                }
                merged.failures.append(f)
            }
        }
        try save(merged, db: out)
        return merged
    }
}
