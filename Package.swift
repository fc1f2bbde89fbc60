// swift-tools-version: 6.1
// kvmsim: an actor-based SMP simulator of Linux KVM's MMU and TLB protocols.
// SPDX-License-Identifier: GPL-2.0-only
//
// Layers, bottom to top (docs/architecture.md):
//   C shims        CURCU (liburcu, atomics), CFiber (fibers), CRegistry (linker section)
//   runtime        SimExec (engine, scheduler, strategies, primitives, oracles' vocabulary), RCU
//   model          KVMCore (arch-neutral KVM and host mm) <- MIPS, PPC, X86, ARM64 (one folder per mechanism)
//   harness        Harness (scenario contracts, registry, runner, traces, shrinking, suite, campaigns)
//   catalogue      Catalog (the scenarios, one folder per architecture and mechanism)
//   tools          Bench, kvmsim (the CLI)
import PackageDescription

/// Release builds drop Swift's dynamic exclusivity checks (`swift_beginAccess`
/// on every class property access the optimizer cannot prove safe): 5.3% of a
/// deterministic schedule's instructions (callgrind, docs/performance.md). The
/// static checks stay, and debug builds, which `swift test` runs, keep the
/// dynamic ones: every test and sanitizer run still enforces exclusivity.
let modelSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "kvmsim",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kvmsim", targets: ["kvmsim"]),
        .library(name: "KVMSim", targets: ["Harness", "Catalog"]),
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
        // User-level context switches (fibers) for the deterministic scheduler.
        .target(name: "CFiber"),
        // The bounds of the linker section scenario registration records live in.
        .target(name: "CRegistry"),
        // Executors, the seeded deterministic scheduler (fibers or threads), the
        // parallel runtime, strategies, and the primitives every layer shares:
        // atomics, barriers, spinlock, rwlock, lockdep, declared oracles and marks.
        .target(name: "SimExec", dependencies: ["CURCU", "CFiber"], swiftSettings: modelSettings),
        // The RCU interface the model uses: real liburcu (parallel) and a modelled RCU (deterministic).
        .target(name: "RCU", dependencies: ["CURCU", "SimExec"], swiftSettings: modelSettings),
        // Arch-neutral KVM: memslots, host mm and pages, the MMU-notifier protocol,
        // vcpu mode/requests, gfn_to_pfn_prot(), the RCU radix table, the MMU oracle.
        .target(name: "KVMCore", dependencies: ["RCU", "SimExec"], swiftSettings: modelSettings),
        // MIPS KVM (arch/mips/kvm): GPA/ (seed 004), TrapEmul/ (seeds 000, 001).
        .target(name: "MIPS", dependencies: ["KVMCore", "RCU", "SimExec"], swiftSettings: modelSettings),
        // PPC Book3S HV KVM (arch/powerpc/kvm): HV/ (seed 002), VPA/ (seed 003).
        .target(name: "PPC", dependencies: ["KVMCore", "SimExec"], swiftSettings: modelSettings),
        // x86 KVM (arch/x86/kvm, arch/x86/kernel/kvm.c): TDPMMU/ (today's TDP MMU and its
        // races), StealTime/ (CVE-2019-3016 and its fix's fix).
        .target(name: "X86", dependencies: ["KVMCore", "RCU", "SimExec"], swiftSettings: modelSettings),
        // arm64 KVM (arch/arm64/kvm): Stage2/ (kvm_pgtable walkers, break-before-make,
        // user_mem_abort() and the notifier hooks), VMID/ (the VMID allocators).
        .target(name: "ARM64", dependencies: ["KVMCore", "RCU", "SimExec"], swiftSettings: modelSettings),
        // The harness: scenario contracts and registry, runner, traces, shrinker,
        // Perfetto export, the regression suite, campaigns. Knows no architecture.
        .target(name: "Harness", dependencies: ["SimExec", "RCU", "CRegistry"], swiftSettings: modelSettings),
        // The catalogue: every scenario, with its worlds and regression cases.
        .target(name: "Catalog", dependencies: ["Harness", "KVMCore", "MIPS", "PPC", "X86", "ARM64", "RCU", "SimExec"], swiftSettings: modelSettings),
        // `kvmsim bench`: speed and memory figures, each beside its baseline; BenchC
        // is the C reference walk of the page-table arena.
        .target(name: "BenchC", dependencies: ["CURCU"], cSettings: [.define("_LGPL_SOURCE")]),
        .target(name: "Bench", dependencies: ["Harness", "Catalog", "KVMCore", "MIPS", "X86", "RCU", "SimExec", "CURCU", "BenchC"], swiftSettings: modelSettings),
        .executableTarget(
            name: "kvmsim",
            dependencies: ["Harness", "Catalog", "Bench", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: modelSettings
        ),
        // Shared test support: running scenarios, checked-in traces.
        .target(name: "TestSupport", dependencies: ["Harness", "Catalog", "SimExec"], path: "Tests/TestSupport"),
        .testTarget(name: "SimExecTests", dependencies: ["SimExec"]),
        .testTarget(name: "RCUTests", dependencies: ["RCU", "SimExec"]),
        .testTarget(name: "KVMCoreTests", dependencies: ["KVMCore", "RCU", "SimExec", "TestSupport"]),
        .testTarget(name: "MIPSTests", dependencies: ["MIPS", "KVMCore", "Catalog", "Harness", "TestSupport"]),
        .testTarget(name: "PPCTests", dependencies: ["PPC", "KVMCore", "Catalog", "Harness", "TestSupport"]),
        .testTarget(name: "X86Tests", dependencies: ["X86", "KVMCore", "Catalog", "Harness", "TestSupport"]),
        .testTarget(name: "ARM64Tests", dependencies: ["ARM64", "KVMCore", "Catalog", "Harness", "TestSupport"]),
        .testTarget(name: "HarnessTests", dependencies: ["Harness", "Catalog", "KVMCore", "TestSupport"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench"]),
    ]
)
