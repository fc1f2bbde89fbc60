// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

struct CampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Long stress over every scenario and variant: deterministic seeds and parallel runs in turn, resumable.",
        discussion: "State and minimal traces of failures live in --db; run again with the same --db to resume.")
    @Option(help: "Campaign database directory (created if missing).") var db: String
    @Option(help: "Time budget of this invocation, seconds.") var seconds: Double
    @Option(help: "Run the I-th of N disjoint slices of the scenario/variant pairs, e.g. 2/4.") var shard: String?
    @Option(help: "Run every pair on the I-th of N disjoint seed streams (seeds I, I+N, ...), e.g. 2/4; combines with --shard.")
    var seedShard: String?
    @Option(help: "Schedules per deterministic unit.") var schedulesPerUnit: Int = 2000
    @Option(help: "Seconds per parallel unit.") var parallelSeconds: Double = 5
    @Option(help: "Budget of the deterministic search that turns a parallel failure into a trace, seconds.") var reproductionSeconds: Double = 60
    @Flag(help: "Print the final state as JSON.") var json = false
    @Flag(help: "Print KTAP version 1: a test per scenario, a subtest per pair, SKIP for pairs not run.") var tap = false
    @Option(help: "Also write JUnit XML here (a testcase per pair).") var junit: String?

    func run() throws {
        guard seconds > 0 && seconds <= 30 * 24 * 3600 else { throw InputError("--seconds must be greater than 0 and at most 30 days") }
        guard schedulesPerUnit >= 1 else { throw InputError("--schedules-per-unit must be at least 1") }
        guard parallelSeconds > 0 else { throw InputError("--parallel-seconds must be greater than 0") }
        guard reproductionSeconds >= 0 else { throw InputError("--reproduction-seconds must not be negative") }
        var o = Campaign.Options(db: db, seconds: seconds)
        o.shard = try shard.map { s throws(InputError) in try RegressionSuite.parseShard(s) }
        // 1/1 is every seed: the same database as no --seed-shard.
        o.seedShard = try seedShard.map { s throws(InputError) in try RegressionSuite.parseShard(s, flag: "--seed-shard") }
            .flatMap { $0.count == 1 ? nil : $0 }
        if tap && json { throw InputError("give --tap or --json, not both") }
        o.schedulesPerUnit = schedulesPerUnit
        o.parallelSecondsPerUnit = parallelSeconds
        o.reproductionSeconds = reproductionSeconds
        o.stop = interruption
        installSignalHandlers()
        let state = try Campaign.run(o) { line in if !json && !tap { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) } }
        try finishCampaign(state, db: db, json: json, tap: tap, junit: junit)
    }
}

/// Writes a campaign state as its summary, JSON, KTAP and/or JUnit, and exits
/// 1 on a failure the regression suite does not know.
func finishCampaign(_ state: Campaign.State, db: String, json: Bool, tap: Bool, junit: String?) throws {
    if let junit {
        do { try state.junit(db: db).write(toFile: junit, atomically: true, encoding: .utf8) }
        catch { throw InputError("cannot write '\(junit)': \(error.localizedDescription)") }
    }
    if tap { FileHandle.standardOutput.write(state.ktap(db: db).data(using: .utf8)!) }
    else if json { printJSON(state) } else { print(Campaign.summary(state)) }
    if interruption.isRaised { throw ExitCode(128 + interruption.signal) }
    if state.failures.contains(where: { !$0.known }) { throw ExitCode(1) }
    }
