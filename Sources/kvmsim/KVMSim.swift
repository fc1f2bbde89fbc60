// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec
import Bench

/// The root command; its subcommands live in files named after them.
struct KVMSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvmsim",
        abstract: "An actor-based SMP simulator of Linux KVM's MMU and TLB protocols, for finding races.",
        version: KVMSimVersion.line,
        subcommands: [List.self, Run.self, Replay.self, Shrink.self, Regress.self, Merge.self, CampaignCommand.self, BenchCommand.self])
}
