// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec

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
    /// The kernel commit the case reproduces ("411740f5422a"), if any.
    public var commit: String?
}

/// A `kvmsim regress` report (also what `kvmsim merge` reads and writes).
/// Facets: `+JUnit` (JUnit XML), `+Table` (the human table).
public struct RegressReport: Codable, Sendable {
    public var format = "kvmsim-regress"
    public var version = RegressReport.currentVersion
    public static let currentVersion = 1
    public var cases: [CaseResult]
    public var passed: Int
    public var failed: Int
    public var elapsedSeconds: Double
    /// "I/N" when this report is one shard, nil for a whole or merged run.
    public var shard: String?
    public var interrupted: Bool

    public init(cases: [CaseResult], elapsedSeconds: Double, shard: String?, interrupted: Bool) {
        self.cases = cases
        passed = cases.filter(\.passed).count
        failed = cases.count - passed
        self.elapsedSeconds = elapsedSeconds
        self.shard = shard
        self.interrupted = interrupted
    }

    /// Joins shard reports into one, in the suite's order. Bad or overlapping
    /// reports are an InputError.
    public static func merge(_ reports: [RegressReport]) throws(InputError) -> RegressReport {
        var seen = Set<String>()
        var all: [CaseResult] = []
        for r in reports {
            guard r.format == "kvmsim-regress" else { throw InputError("not a kvmsim regress report") }
            guard r.version == currentVersion else {
                throw InputError("a kvmsim regress report of version \(r.version); this kvmsim reads version \(currentVersion)")
            }
            for c in r.cases {
                guard seen.insert(c.id).inserted else { throw InputError("case '\(c.id)' appears in more than one report") }
                all.append(c)
            }
        }
        let order = Dictionary(RegressionSuite.cases.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
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
}
