// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SimExec
@testable import Harness
import Catalog

/// `kvmsim campaign`: resumes from its database, records failures with minimal
/// traces, refuses a database of another shard.
@Suite struct CampaignTests {
    @Test func resumesAndRecordsFailures() throws {
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-campaign-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: db) }
        // The shard holding a race found in a few schedules (sync-mmu-race/pre-fix),
        // about two pairs a shard: derived from the registry, so a new scenario
        // moves the shard, not the test.
        let all = Campaign.pairs(shard: nil)
        let count = max(1, all.count / 2)
        let target = try #require(all.firstIndex { $0.id == "sync-mmu-race/pre-fix" })
        let shard = (index: target % count + 1, count: count)
        var o = Campaign.Options(db: db, seconds: 1.5)
        o.shard = shard
        o.schedulesPerUnit = 50
        o.parallelSecondsPerUnit = 0.2
        let first = try Campaign.run(o)
        #expect(first.units > 0)
        #expect(first.pairs.map(\.id) == Campaign.pairs(shard: shard).map(\.id))
        #expect(first.pairs.contains { $0.id == "sync-mmu-race/pre-fix" })
        var again = try Campaign.run(o)
        #expect(again.units > first.units)
        // The race's pair resumes past its first run's deterministic seeds.
        // Units go round-robin over the shard's two pairs, deterministic and
        // parallel in turn, from where the last run stopped: a resumed run may
        // spend its 1.5 s on parallel units (a known race's first parallel
        // unit records and reproduces) or on the other pair before the race's
        // next deterministic unit comes round, so resume until it does, each
        // resumption doing more units.
        let id = "sync-mmu-race/pre-fix"
        let before = try #require(first.pairs.first { $0.id == id })
        var resumptions = 0
        while try #require(again.pairs.first { $0.id == id }).nextDeterministicSeed <= before.nextDeterministicSeed, resumptions < 8 {
            let units = again.units
            again = try Campaign.run(o)
            #expect(again.units > units)
            resumptions += 1
        }
        let after = try #require(again.pairs.first { $0.id == id })
        #expect(after.nextDeterministicSeed > before.nextDeterministicSeed)
        let failure = try #require(again.failures.first { $0.mode == .deterministic && $0.scenario == "sync-mmu-race" })
        #expect(failure.known)
        let trace = try #require(failure.trace)
        #expect(try TraceFile.load(from: (db as NSString).appendingPathComponent(trace)).violation?.oracle == failure.oracle)
        o.shard = (shard.index % shard.count + 1, shard.count + 1)
        #expect(throws: InputError.self) { try Campaign.run(o) }
    }

    /// A parallel unit that fails keeps a deterministic trace: recorded at
    /// access-level points, reproduced, and replaying to the same oracle.
    @Test func aParallelFailureIsKeptAsATrace() throws {
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-campaign-par-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: db) }
        let all = Campaign.pairs(shard: nil)
        let target = try #require(all.firstIndex { $0.id == "sync-mmu-race/pre-fix" })
        var o = Campaign.Options(db: db, seconds: 8)
        o.shard = (index: target + 1, count: all.count)             // that pair alone
        o.schedulesPerUnit = 20
        o.parallelSecondsPerUnit = 4
        o.reproductionSeconds = 30
        var lines: [String] = []
        let state = try Campaign.run(o) { lines.append($0) }
        let failure = try #require(state.failures.first { $0.mode == .parallel }, "\(lines)")
        #expect(failure.reproduced == true)
        let trace = try #require(failure.trace)
        #expect(trace.contains("parallel-seed"))
        let t = try TraceFile.load(from: (db as NSString).appendingPathComponent(trace))
        #expect(t.points == .accesses && t.violation?.oracle == failure.oracle)
        #expect(try Runner.replay(t).violations.first?.oracle == failure.oracle)
        #expect(lines.contains { $0.contains("trace ") && $0.contains("parallel") })
    }

    static func tempDB(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("kvmsim-\(name)-\(getpid())").path
    }

    /// A campaign over the one pair `id`, with small units.
    static func onePair(_ id: String, db: String, seconds: Double, schedulesPerUnit: Int,
                        parallelSeconds: Double = 5, reproductionSeconds: Double = 60) throws -> Campaign.Options {
        var o = Campaign.Options(db: db, seconds: seconds)
        o.shard = try shardOf(id)
        o.schedulesPerUnit = schedulesPerUnit
        o.parallelSecondsPerUnit = parallelSeconds
        o.reproductionSeconds = reproductionSeconds
        return o
    }

    /// The pair shard that holds `id` alone.
    static func shardOf(_ id: String) throws -> (index: Int, count: Int) {
        let all = Campaign.pairs(shard: nil)
        let target = try #require(all.firstIndex { $0.id == id })
        return (target + 1, all.count)
    }

    /// Two seed shards of one pair, merged: every seed each ran is in the
    /// merge once, shard I ran only seeds = I mod 2, failures and their traces
    /// are the union, and KTAP and JUnit of the merge are well formed.
    @Test func twoSeedShardsMergeWithNoSeedTwice() throws {
        let dbs = [Self.tempDB("seedshard1"), Self.tempDB("seedshard2")], out = Self.tempDB("seedshard-merged")
        defer { for d in dbs + [out] { try? FileManager.default.removeItem(atPath: d) } }
        var states: [Campaign.State] = []
        for (i, db) in dbs.enumerated() {
            var o = try Self.onePair("sync-mmu-race/pre-fix", db: db, seconds: 1.5, schedulesPerUnit: 30,
                                     parallelSeconds: 0.2, reproductionSeconds: 2)
            o.seedShard = (i + 1, 2)
            states.append(try Campaign.run(o))
        }
        for (i, s) in states.enumerated() {
            let p = try #require(s.pairs.first)
            let seeds = p.deterministicSeeds.flatMap(\.seeds) + p.parallelSeeds.flatMap(\.seeds)
            #expect(!seeds.isEmpty && seeds.allSatisfy { $0 % 2 == UInt64((i + 1) % 2) }, "shard \(i + 1)/2 ran \(seeds)")
            #expect(p.deterministicSeeds.count == 1 && p.deterministicSeeds[0].stride == 2)
        }
        let merged = try Campaign.merge(dbs, into: out)
        #expect(merged.mergedFrom == dbs)
        let p = try #require(merged.pairs.first { $0.id == "sync-mmu-race/pre-fix" })
        let det = p.deterministicSeeds.flatMap(\.seeds)
        #expect(det.count == Set(det).count, "a seed ran twice: \(det.sorted())")
        #expect(Set(det) == Set(states.flatMap { $0.pairs[0].deterministicSeeds.flatMap(\.seeds) }))
        #expect(p.schedules == states.reduce(0) { $0 + $1.pairs[0].schedules })
        #expect(merged.failures.count == states.reduce(0) { $0 + $1.failures.count })
        for f in merged.failures {
            if let t = f.trace { #expect(try TraceFile.load(from: (out as NSString).appendingPathComponent(t)).violation?.oracle == f.oracle) }
        }
        #expect(try Campaign.load(db: out).failures.count == merged.failures.count)
        let tests = try KTAPChecker.check(merged.ktap(db: out))
        let pairs = tests.flatMap(\.subtests)
        #expect(pairs.count == Campaign.pairs(shard: nil).count)
        #expect(pairs.filter { !$0.skip }.map(\.name) == ["sync-mmu-race/pre-fix"])
        #expect(pairs.allSatisfy { $0.ok }, "a known race found again passes")
        _ = try XMLDocument(xmlString: merged.junit(db: out))
        // A merged database is a report, not a campaign to resume.
        #expect(throws: InputError.self) { try Campaign.run(Campaign.Options(db: out, seconds: 1)) }
    }

    /// Sources that share a seed are refused before anything is written.
    @Test func anOverlappingMergeIsRefused() throws {
        let db = Self.tempDB("overlap"), out = Self.tempDB("overlap-merged")
        defer { for d in [db, out] { try? FileManager.default.removeItem(atPath: d) } }
        _ = try Campaign.run(Self.onePair("gva-flush/patched", db: db, seconds: 0.3, schedulesPerUnit: 10))
        #expect(throws: InputError.self) { try Campaign.merge([db, db], into: out) }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// A state written before the seed lists existed reads as having run seeds
    /// 1 ..< next.
    @Test func aStateWithoutSeedListsReadsAsSeedsFromOne() throws {
        let json = """
            {"format":"kvmsim-campaign","version":1,"units":4,"elapsedSeconds":2,"failures":[],"pairs":[
             {"scenario":"gva-flush","variant":"patched","nextDeterministicSeed":4,"nextParallelSeed":2,"schedules":30,
              "parallelSeconds":1,"parallelWork":9,"coverage":{},"unreachedMarks":[]}]}
            """
        let s = try JSONDecoder().decode(Campaign.State.self, from: Data(json.utf8))
        #expect(s.pairs[0].deterministicSeeds == [Campaign.SeedRun(first: 1, stride: 1, count: 3)])
        #expect(s.pairs[0].parallelSeeds.flatMap(\.seeds) == [1])
        #expect(s.seedShard == nil && s.mergedFrom == nil)
    }

    @Test func seedRunsKnowTheirCommonSeeds() {
        let odd = Campaign.SeedRun(first: 1, stride: 2, count: 50), even = Campaign.SeedRun(first: 2, stride: 2, count: 50)
        #expect(odd.firstCommon(with: even) == nil)
        #expect(odd.firstCommon(with: Campaign.SeedRun(first: 6, stride: 3, count: 4)) == 9)
        var runs: [Campaign.SeedRun] = []
        for s: UInt64 in [3, 7, 11, 19] { Campaign.SeedRun.record(s, stride: 4, in: &runs) }
        #expect(runs == [Campaign.SeedRun(first: 3, stride: 4, count: 3), Campaign.SeedRun(first: 19, stride: 4, count: 1)])
    }

    /// State files a campaign never writes are bad input, not a trap: a
    /// stride of 0, a negative count, seeds that overflow.
    @Test func malformedSeedRunsAreRefused() throws {
        for (i, bad) in [#""deterministicSeeds":[{"first":1,"stride":0,"count":5}],"#,
                         #""deterministicSeeds":[{"first":1,"stride":1,"count":-1}],"#,
                         #""deterministicSeeds":[{"first":18446744073709551615,"stride":2,"count":2}],"#, ""].enumerated() {
            let next = bad.isEmpty ? "18446744073709551615" : "1"
            let db = Self.tempDB("malformed\(i)")
            defer { try? FileManager.default.removeItem(atPath: db) }
            try FileManager.default.createDirectory(atPath: db, withIntermediateDirectories: true)
            let json = """
                {"format":"kvmsim-campaign","version":1,"units":1,"elapsedSeconds":1,"failures":[],"pairs":[
                 {"scenario":"gva-flush","variant":"patched","nextDeterministicSeed":\(next),"nextParallelSeed":1,"schedules":3,\(bad)
                  "parallelSeconds":0,"parallelWork":0,"coverage":{},"unreachedMarks":[]}]}
                """
            try Data(json.utf8).write(to: URL(fileURLWithPath: Campaign.statePath(db)))
            #expect(throws: InputError.self) { try Campaign.load(db: db) }
        }
    }

    /// A source naming a trace it lacks stops the merge before it writes.
    @Test func aMergeWithAMissingTraceWritesNothing() throws {
        let db = Self.tempDB("missing-trace"), out = Self.tempDB("missing-trace-merged")
        defer { for d in [db, out] { try? FileManager.default.removeItem(atPath: d) } }
        let s = try Campaign.run(Self.onePair("sync-mmu-race/pre-fix", db: db, seconds: 0.5, schedulesPerUnit: 30,
                                              parallelSeconds: 0.1, reproductionSeconds: 1))
        let trace = try #require(s.failures.compactMap(\.trace).first)
        try FileManager.default.removeItem(atPath: (db as NSString).appendingPathComponent(trace))
        #expect(throws: InputError.self) { try Campaign.merge([db], into: out) }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// Common seeds are found by arithmetic, not by listing a billion seeds.
    @Test func commonSeedsOfLongRuns() {
        let legacy = Campaign.SeedRun(first: 1, stride: 1, count: 1_000_000_000)
        let shard = Campaign.SeedRun(first: 2_000_000_003, stride: 8, count: 1_000_000_000)
        #expect(legacy.firstCommon(with: shard) == nil)
        #expect(legacy.firstCommon(with: Campaign.SeedRun(first: 999_999_993, stride: 8, count: 10)) == 999_999_993)
        #expect(Campaign.SeedRun(first: 3, stride: 6, count: 1_000_000_000).firstCommon(with: Campaign.SeedRun(first: 2, stride: 4, count: 1_000_000_000)) == nil)
        #expect(Campaign.SeedRun(first: 3, stride: 6, count: 1_000_000_000).firstCommon(with: Campaign.SeedRun(first: 1, stride: 4, count: 1_000_000_000)) == 9)
    }
}
