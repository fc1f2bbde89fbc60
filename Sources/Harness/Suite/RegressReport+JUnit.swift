// SPDX-License-Identifier: GPL-2.0-only
import Foundation

extension RegressReport {
    /// JUnit XML: one testsuite, one testcase per case, a failure for each case
    /// whose verdict differs from its expectation.
    public var junit: String {
        let r = self
        let esc = JUnitXML.escape
        let t = { (x: Double) in String(format: "%.3f", x) }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"kvmsim regress\" tests=\"\(r.cases.count)\" failures=\"\(r.failed)\" time=\"\(t(r.elapsedSeconds))\">\n"
        x += "  <testsuite name=\"kvmsim.regress\" tests=\"\(r.cases.count)\" failures=\"\(r.failed)\" errors=\"0\" skipped=\"0\" time=\"\(t(r.elapsedSeconds))\">\n"
        for c in r.cases {
            x += "    <testcase classname=\"kvmsim.\(esc(c.scenario))\" name=\"\(esc(c.id)) expects \(c.expected.rawValue)\" time=\"\(t(c.elapsedSeconds))\""
            if c.passed {
                x += ">\n      <system-out>\(esc(RegressReport.summary(c)))</system-out>\n    </testcase>\n"
            } else {
                let why = c.interrupted ? "interrupted" : "expected \(c.expected.rawValue), found \(c.found.rawValue)"
                x += ">\n      <failure message=\"\(esc(why))\" type=\"verdict\">\(esc(RegressReport.summary(c)))</failure>\n    </testcase>\n"
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
}
