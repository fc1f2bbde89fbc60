// SPDX-License-Identifier: GPL-2.0-only
import Foundation

extension RegressReport {
    /// The human table.
    public var table: String {
        let r = self
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        let w = max(4, r.cases.map(\.id.count).max() ?? 0)
        var lines = [pad("case", w) + "  " + pad("expected", 9) + "  " + pad("found", 9) + "  " + pad("to first", 8, right: true) + "  " + pad("time", 7, right: true)]
        for c in r.cases {
            let mark = c.passed ? "" : (c.interrupted ? "  INTERRUPTED" : "  MISMATCH")
            lines.append(pad(c.id, w) + "  " + pad(c.expected.rawValue, 9) + "  " + pad(c.found.rawValue, 9) + "  "
                         + pad(c.schedulesToFirstViolation.map(String.init) ?? "-", 8, right: true) + "  "
                         + pad(String(format: "%.1fs", c.elapsedSeconds), 7, right: true) + mark)
        }
        lines.append("\(r.passed) passed, \(r.failed) failed, \(String(format: "%.1f", r.elapsedSeconds)) s\(r.interrupted ? " (interrupted)" : "")")
        return lines.joined(separator: "\n")
    }
}
