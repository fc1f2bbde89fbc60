// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The version of kvmsim and of every file format it reads or writes
/// (`kvmsim --version`). A format's version changes whenever a field changes
/// meaning; a reader refuses another version in one line naming both.
public enum KVMSimVersion {
    public static let package = "0.7.0"
    public static var formats: [(name: String, version: Int)] {
        [("trace", TraceFile.currentVersion), ("regress report", RegressReport.currentVersion),
         ("campaign", Campaign.State.currentVersion)]
    }
    /// One line: `kvmsim 0.7.0 (trace format 1, regress report 1, campaign 1)`.
    public static var line: String {
        "kvmsim \(package) (" + formats.map { "\($0.name) format \($0.version)" }.joined(separator: ", ") + ")"
    }
}
