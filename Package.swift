// swift-tools-version: 6.1
// kvmsim: an actor-based SMP simulator of Linux KVM's MMU and TLB protocols.
// SPDX-License-Identifier: GPL-2.0-only
import PackageDescription

let package = Package(
    name: "kvmsim",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kvmsim", targets: ["kvmsim"]),
        .library(name: "Scenarios", targets: ["Scenarios"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C shim over liburcu-memb (Debian liburcu-dev). _LGPL_SOURCE inlines the
        // read-side fast paths; allowed because kvmsim is GPL-2.0.
        .target(
            name: "CURCU",
            cSettings: [.define("_LGPL_SOURCE")],
            linkerSettings: [.linkedLibrary("urcu-memb"), .linkedLibrary("urcu-common"), .linkedLibrary("pthread")]
        ),
        // The RCU interface the model uses: real liburcu (parallel) and a modelled RCU (deterministic).
        .target(name: "RCU", dependencies: ["CURCU", "SimExec"]),
        // User-level context switches (fibers) for the deterministic scheduler.
        .target(name: "CFiber"),
        // Executors, the seeded deterministic scheduler, the parallel runtime, traces.
        .target(name: "SimExec", dependencies: ["CURCU", "CFiber"]),
        // Generic KVM: memslots, host mm and pages, GPA page table, MMU notifiers, TLBs, oracles.
        .target(name: "KVMCore", dependencies: ["RCU", "SimExec", "CURCU"]),
        // MIPS KVM (arch/mips/kvm): seed 004 (KVM_CAP_SYNC_MMU).
        .target(name: "MIPS", dependencies: ["KVMCore", "RCU", "SimExec"]),
        // PPC Book3S HV KVM (arch/powerpc/kvm): seed 002 (local vs. global TLB invalidation), seed 003 (VPA registration).
        .target(name: "PPC", dependencies: ["KVMCore", "SimExec"]),
        // x86 KVM (arch/x86/kvm, arch/x86/kernel/kvm.c): the steal-time PV TLB flush race (CVE-2019-3016).
        .target(name: "X86", dependencies: ["KVMCore", "SimExec"]),
        // Scenario registry, runner, reports and trace files (used by the CLI and the tests).
        .target(name: "Scenarios", dependencies: ["MIPS", "PPC", "X86", "KVMCore", "RCU", "SimExec"]),
        // `kvmsim bench`: speed and memory figures, each beside its baseline; BenchC
        // is the C reference walk of the page-table arena.
        .target(name: "BenchC", dependencies: ["CURCU"], cSettings: [.define("_LGPL_SOURCE")]),
        .target(name: "Bench", dependencies: ["Scenarios", "KVMCore", "RCU", "SimExec", "CURCU", "BenchC"]),
        .executableTarget(
            name: "kvmsim",
            dependencies: ["Scenarios", "Bench", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "RCUTests", dependencies: ["RCU", "SimExec"]),
        .testTarget(name: "SimExecTests", dependencies: ["SimExec"]),
        .testTarget(name: "KVMCoreTests", dependencies: ["KVMCore", "RCU", "SimExec"]),
        .testTarget(name: "MIPSTests", dependencies: ["MIPS", "KVMCore", "Scenarios"]),
        .testTarget(name: "PPCTests", dependencies: ["PPC", "KVMCore", "Scenarios"]),
        .testTarget(name: "X86Tests", dependencies: ["X86", "Scenarios"]),
        .testTarget(name: "ScenariosTests", dependencies: ["Scenarios"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench"]),
    ]
)
