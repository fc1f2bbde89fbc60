// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Foundation
import Harness
import Catalog
import SimExec

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a scenario and check its oracles.")
    @Argument(help: "Scenario name (see `kvmsim list`).") var scenario: String
    @Option(help: "Variant of the modelled kernel code.") var variant: String
    @Option(help: "deterministic or parallel.") var mode: String = "deterministic"
    @Option(help: "Seed of the run.") var seed: String = "1"
    @Option(help: "Deterministic: schedules to run. Parallel: work units (guest ops + host events).") var schedules: Int?
    @Option(help: "Stop after this many seconds.") var seconds: Double?
    @Option(help: "random or pct.") var strategy: String = "random"
    @Option(help: "PCT bug depth.") var depth: Int = 3
    @Option(help: "Switch actors (deterministic) or record passes (parallel with --trace-out) at named points, or also at every access to kernel memory: named or accesses (default named; accesses for parallel --trace-out).") var points: String?
    @Option(help: "Schedule (parallel --trace-out: episode) lengths as multiples of the scenario's quotas, used in turn (1 = the scenario's own; default 1,2,4,8, and 8,16,32 for parallel --trace-out).") var lengths: String?
    @Option(help: "Host CPUs.") var cpus: Int?
    @Option(help: "Virtual CPUs.") var vcpus: Int?
    @Option(help: "Guest pages.") var pages: Int?
    @Option(help: "Guest operations per vcpu in one deterministic schedule.") var opsPerVcpu: Int?
    @Option(help: "Host events per host event source in one deterministic schedule.") var hostEventsPerSource: Int?
    @Option(help: "PPC: hardware threads per core (sharing one TLB).") var threadsPerCore: Int?
    @Option(help: "PPC: vcpus per vcore.") var vcpusPerVcore: Int?
    @Option(help: "PPC: percent of the guest's invalidations that use H_LOCAL.") var hLocalPercent: Int?
    @Option(help: "Host CPUs that run host mm event sources (from cpu0 up).") var hostEventSources: Int?
    @Option(help: "MIPS GPA, x86 TDP, arm64 stage-2: index bits per table level.") var tableBits: Int?
    @Option(help: "x86 TDP: address spaces (2: vcpus enter and leave SMM).") var addressSpaces: Int?
    @Option(help: "x86 TDP: memslots per address space over one contiguous hva range (1 or 2).") var memslots: Int?
    @Option(help: "x86 TDP, arm64 stage-2: 1 for hugetlbfs-backed guest RAM (x86: with the NX huge page mitigation; arm64: remapped by the VMM now and then).") var hugePages: Int?
    @Option(help: "x86 TDP: the eager_page_split module parameter (1, the default, or 0).") var eagerPageSplit: Int?
    @Option(help: "x86 TDP: 1 if the CPU logs dirty pages (Intel PML, the default), 0 if dirty logging write-protects (AMD).") var pml: Int?
    @Option(help: "x86 TDP: 1 for the host's page dirty state with v6.11's writable swap-in (the default: reclaim drops clean pages, lost-dirty-page), 0 for a host mm that copies every reclaimed page out.") var pageDirty: Int?
    @Option(help: "x86 TDP, arm64 stage-2: background KVM work (x86: all, none, zap-gfn-range, fast-zap, ...; arm64: dirty-log, none).") var kvmWork: String?
    @Option(help: "arm64 stage-2: VMs sharing the physical CPUs and the VMID space.") var vms: Int?
    @Option(help: "arm64 stage-2: physical CPUs the vcpus are scheduled on.") var pcpus: Int?
    @Option(help: "arm64 stage-2: VMID width (hardware: 8 or 16; 1-4 make rollovers frequent).") var vmidBits: Int?
    @Option(help: "arm64 stage-2: free unlinked tables through RCU (rcu, the host) or at once (immediate, pKVM at EL2).") var tableFree: String?
    @Option(help: "MIPS GPA: free emptied GPA tables after a grace period (rcu) or at once, as the kernel does (immediate).") var gpaTableFree: String?
    @Option(help: "MIPS GPA: the host mm's notifier calls in reclaim: v4.11 (invalidate_page under the page table lock; sync-mmu-race/stress default) or v4.13 (invalidate_range_start/end).") var hostMm: String?
    @Option(help: "MIPS GPA: where kvm_mips_map_page() marks pages accessed: v4.11 (after the unlock; default) or v6.13 (before it).") var markAccessed: String?
    @Option(help: "MIPS GPA: guest RAM backing: anon (default) or file (MAP_SHARED of a file: page cache, writeback).") var guestRam: String?
    @Option(help: "MIPS GPA: reclaim and young bits: ignore (default) or check (v4.11's page_referenced() and try_to_unmap_one() checks).") var reclaimYoung: String?
    @Option(help: "PPC VPA: 1 for a guest reading each running vcpu's DTL (pseries dtl_file_read()), checked against the entries the host published.") var dtlReader: Int?
    @Option(help: "PPC VPA: sc (default) or pso: the host's stores to the guest's DTL view wait in per-CPU store buffers the scheduler drains, so a missing smp_wmb() shows (needs --dtl-reader 1).") var memoryModel: String?
    @Flag(help: "Keep running after the first violation.") var keepGoing = false
    @Flag(help: "Run each schedule twice and compare the traces (exit 1 at the first difference).") var checkDeterminism = false
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Write the first failing schedule to this trace file (parallel mode: reproduced deterministically first).") var traceOut: String?
    @Option(help: "Parallel with --trace-out: budget of the deterministic search for the failure, seconds.") var reproductionSeconds: Double = 60
    @Option(help: "Deterministic mode: fibers (default) or threads; the same seed gives the same schedule with either.") var backend: String?

    func run() throws {
        guard let m = ExecutionMode(rawValue: mode) else { throw InputError("--mode must be deterministic or parallel (got '\(mode)')") }
        var be = SimEngine.DeterministicBackend.preferred
        if let backend {
            guard let b = SimEngine.DeterministicBackend(rawValue: backend) else { throw InputError("--backend must be fibers or threads (got '\(backend)')") }
            be = b
        }
        guard let st = StrategyKind(rawValue: strategy) else { throw InputError("--strategy must be random or pct (got '\(strategy)')") }
        guard let sd = UInt64(seed) else { throw InputError("--seed must be a non-negative integer (got '\(seed)')") }
        if schedules != nil && seconds != nil { throw InputError("give --schedules or --seconds, not both") }
        var selection = try ScenarioRegistry.named(scenario).selection(variant: variant, mode: m)
        if let cpus { selection.sizes.cpus = cpus; selection.sizes.hostEventSources = min(selection.sizes.hostEventSources, cpus) }
        if let vcpus { selection.sizes.vcpus = vcpus }
        if let pages { selection.sizes.pages = pages }
        if let opsPerVcpu { selection.sizes.opsPerVCPU = opsPerVcpu }
        if let hostEventsPerSource { selection.sizes.hostEventsPerSource = hostEventsPerSource }
        if let hostEventSources { selection.sizes.hostEventSources = hostEventSources }
        for (flag, value) in [("threads-per-core", threadsPerCore), ("vcpus-per-vcore", vcpusPerVcore), ("h-local-percent", hLocalPercent),
                              ("table-bits", tableBits), ("address-spaces", addressSpaces), ("memslots", memslots), ("huge-pages", hugePages),
                              ("eager-page-split", eagerPageSplit), ("pml", pml), ("page-dirty", pageDirty), ("vms", vms), ("pcpus", pcpus), ("vmid-bits", vmidBits),
                              ("dtl-reader", dtlReader)] {
            if let value { try selection.set(knob: flag, to: value) }
        }
        for (flag, value) in [("gpa-table-free", gpaTableFree), ("host-mm", hostMm), ("mark-accessed", markAccessed), ("guest-ram", guestRam), ("reclaim-young", reclaimYoung), ("kvm-work", kvmWork), ("table-free", tableFree),
                              ("memory-model", memoryModel)] {
            if let value { try selection.set(knob: flag, to: value) }
        }
        var o = RunOptions(selection, mode: m)
        o.seed = sd; o.schedules = schedules; o.seconds = seconds
        o.strategy = st; o.depth = depth; o.keepGoing = keepGoing; o.checkDeterminism = checkDeterminism
        o.backend = be
        o.stop = interruption
        o.recordTrace = m == .parallel && traceOut != nil
        guard reproductionSeconds >= 0 else { throw InputError("--reproduction-seconds must not be negative") }
        o.reproductionSeconds = reproductionSeconds
        // A recording at accesses lines up with its replay (docs/architecture.md, "Parallel failures").
        o.points = o.recordTrace ? .accesses : .named
        if let points {
            guard let granularity = PointGranularity(rawValue: points) else { throw InputError("--points must be named or accesses (got '\(points)')") }
            o.points = granularity
        }
        o.lengths = o.recordTrace ? RunOptions.recordingLengths : RunOptions.searchLengths
        if let lengths {
            o.lengths = try lengths.split(separator: ",", omittingEmptySubsequences: false).map { part throws(InputError) in
                guard let f = Int(part) else { throw InputError("--lengths must be comma-separated integers (got '\(lengths)')") }
                return f
            }
        }
        let runner = try Runner(o)
        if m == .deterministic && be == .fibers, let why = SimEngine.DeterministicBackend.fibersUnavailableReason {
            printError("note: using the thread backend (same schedules, about 10x slower): \(why)")
        }
        installSignalHandlers()
        let showProgress = !json && isatty(1) == 1 && isatty(2) == 1
        if showProgress {
            runner.progress = { done, total, elapsed in
                guard elapsed > 1 else { return }
                var line = "\r\(m == .deterministic ? "schedules" : "work") \(done)"
                if let total { let f = Double(done) / Double(total); let n = Int(f * 30); line += "/\(total) [" + String(repeating: "#", count: n) + String(repeating: " ", count: 30 - n) + "]" }
                line += String(format: " %.1fs", elapsed)
                FileHandle.standardError.write(line.data(using: .utf8)!)
            }
        }
        let report = runner.run()
        if showProgress { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
        if let traceOut {
            if let t = runner.failingTrace {
                do { try t.write(to: traceOut) } catch { throw InputError("cannot write trace file '\(traceOut)': \(error.localizedDescription)") }
            } else if report.violations > 0 && report.reproduced == false {
                printError("the real-thread failure was not reproduced deterministically in \(report.reproductionSchedules ?? 0) schedules (\(String(format: "%.0f", report.reproductionSeconds ?? 0)) s): no trace written")
            } else if report.violations == 0 && !json {
                print("no violation: no trace written")
            }
        }
        if json { printJSON(report) } else { printHuman(report, trace: traceOut) }
        if interruption.isRaised { throw ExitCode(128 + interruption.signal) }
        if let m = report.determinismMismatch {
            if !json { print("NOT DETERMINISTIC: \(m)") }
            throw ExitCode(1)
        }
        if report.violations > 0 { throw ExitCode(1) }
    }

    func printHuman(_ r: RunReport, trace: String?) {
        print("\(r.scenario) --variant \(r.variant) --mode \(r.mode.rawValue) --seed \(r.seed): \(r.schedules) \(r.mode == .deterministic ? "schedules" : "work units") in \(String(format: "%.2f", r.elapsedSeconds)) s\(r.interrupted ? " (interrupted)" : "")")
        if let v = r.firstViolation {
            let whereFound = r.mode == .deterministic ? "schedule \(r.firstViolationSchedule ?? 0), step \(v.step)"
                : (r.episodes != nil ? "episode \(r.firstViolationSchedule ?? 0), on real threads" : "on real threads")
            print("VIOLATION \(v.oracle) in \(whereFound), \(v.actor): \(v.message)")
            if let trace, r.mode == .deterministic || r.reproduced == true {
                if r.mode == .parallel {
                    print("reproduced deterministically in \(r.reproductionSchedules ?? 0) schedules (\(String(format: "%.1f", r.reproductionSeconds ?? 0)) s), shrunk in \(String(format: "%.1f", r.shrinkSeconds ?? 0)) s")
                }
                print("trace written to \(trace); see it with: kvmsim replay \(trace)")
            }
        } else {
            print("no violation")
        }
        if r.violations > 1 {
            print("violations: " + r.violationsByOracle.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if !r.counters.isEmpty {
            print("counters: " + r.counters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if let h = r.traceHash { print("traceHash \(h)") }
    }
}
