// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join `regress --shard --json` reports, or campaign databases, into one report.",
        discussion: """
            Reports: give the JSON files. Campaign databases (of --shard slices or --seed-shard streams, \
            parallel reproductions included): give their directories and --out; a seed of a pair that ran \
            in two databases is refused.
            """)
    @Argument(help: "Shard reports (JSON files) or campaign databases (directories), all of one kind.") var inputs: [String]
    @Option(help: "Campaign databases: the directory of the merged database (new).") var out: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print KTAP version 1 (cases or pairs no input holds are SKIP).") var tap = false
    @Option(help: "Also write JUnit XML here.") var junit: String?

    func run() throws {
        guard !inputs.isEmpty else { throw InputError("give at least one report or campaign database to merge") }
        if tap && json { throw InputError("give --tap or --json, not both") }
        var isDirectory: ObjCBool = false
        let dirs = inputs.filter { FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue }
        if !dirs.isEmpty {
            if let missing = inputs.first(where: { !FileManager.default.fileExists(atPath: $0) }) { throw InputError("'\(missing)' does not exist") }
            guard dirs.count == inputs.count else { throw InputError("give regress reports or campaign databases, not both") }
            guard let out else { throw InputError("merging campaign databases needs --out DIR for the merged database") }
            try finishCampaign(try Campaign.merge(inputs, into: out), db: out, json: json, tap: tap, junit: junit)
            return
        }
        if out != nil { throw InputError("--out is for campaign databases; regress reports merge to stdout") }
        var reports: [RegressReport] = []
        for f in inputs { reports.append(try RegressReport.load(f)) }
        try finishRegress(try RegressReport.merge(reports), json: json, tap: tap, suite: RegressionSuite.cases(shard: nil), junit: junit)
    }
}
