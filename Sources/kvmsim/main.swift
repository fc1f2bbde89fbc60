// SPDX-License-Identifier: GPL-2.0-only
// kvmsim: the command line. Exit status 0: no violation; 1: violation; 2: bad input.
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec
import Bench

#if canImport(Glibc)
import Glibc
#endif

// Parse and run; bad input of any kind is one line on stderr and exit status 2.
do {
    var command = try KVMSim.parseAsRoot()
    try command.run()
} catch let e as InputError {
    printError(e.message)
    exit(2)
} catch let e as ExitCode {
    exit(e.rawValue)
} catch {
    let code = KVMSim.exitCode(for: error)
    if code == .success {
        print(KVMSim.fullMessage(for: error))
        exit(0)
    }
    let message = KVMSim.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad input"
    printError(message)
    exit(2)
}
