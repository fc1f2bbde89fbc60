// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

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
