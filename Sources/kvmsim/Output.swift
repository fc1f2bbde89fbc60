// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec
#if canImport(Glibc)
import Glibc
#endif

func printJSON<T: Encodable>(_ value: T) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    let data = try! enc.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write("\n".data(using: .utf8)!)
}

func printError(_ line: String) {
    FileHandle.standardError.write("kvmsim: \(line)\n".data(using: .utf8)!)
}

/// Raised by SIGINT / SIGTERM; every long command polls it and stops between
/// units of work, reporting what ran.
let interruption = StopSignal()

private func onSignal(_ sig: Int32) {
    interruption.raise(sig)
}

func installSignalHandlers() {
    signal(SIGINT, onSignal)
    signal(SIGTERM, onSignal)
}
