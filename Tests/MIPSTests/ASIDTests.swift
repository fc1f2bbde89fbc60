// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import MIPS
@testable import Catalog
import Harness
import TestSupport

/// Seed 000: every variant's verdict in deterministic mode, pinned.
@Suite struct ASIDLazyRegenTests {
    /// Variants with a hole are caught within a fixed budget, with both strategies.
    @Test(arguments: ["pre-fix", "patched", "as-merged", "propagate-only", "no-cancel-only"])
    func holesAreCaught(variant: String) throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("asid-lazy-regen", variant, schedules: 2000, strategy: strategy)
            #expect(r.violations > 0, "\(variant) with \(strategy) not caught")
            #expect(r.firstViolation?.oracle == "stale-asid")
        }
    }

    @Test func upstreamHolds() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try run("asid-lazy-regen", "upstream-4.11", schedules: 5000, strategy: strategy)
            #expect(r.violations == 0, "\(r.firstViolation?.description ?? "")")
        }
    }

    /// Seed 000's own holes, (a) and (b), concern the guest user ASID; with
    /// user-mode reads only (`guestKernelAccesses = 0`) the v4.10 kernel-ASID
    /// finding (hole c) stays out of the way and the message's fix holds.
    static func userOnly(_ variant: ASIDVariant, seed: UInt64 = 1, schedules: Int, strategy: StrategyKind = .random) throws -> (RunReport, Runner) {
        try run(ASIDLazyRegenScenario(), variant, seed: seed, schedules: schedules, strategy: strategy) { $0.options.guestKernelAccesses = 0 }
    }

    @Test func patchedIntendedHoldsForUserASIDs() throws {
        for strategy in [StrategyKind.random, .pct] {
            let (r, _) = try Self.userOnly(.patchedIntended, schedules: 5000, strategy: strategy)
            #expect(r.violations == 0, "\(r.firstViolation?.description ?? "")")
        }
    }

    /// Hole (c), the finding: in every v4.10 form, `kvm_arch_vcpu_load()`
    /// regenerates the kernel ASID, then the user one; when the user one starts a
    /// new ASID cycle (the TLB flushed), the kernel ASID just taken is of the old
    /// cycle, yet guest kernel mode runs with it until the next vcpu_load. Its TLB
    /// entries outlive the flush and alias the same ASID number handed out later in
    /// the new cycle. v4.11's kvm_trap_emul_vcpu_reenter() checks the running mode's
    /// context before every entry.
    @Test func holeCIsReachable() throws {
        let (r, runner) = try run("asid-lazy-regen", "patched-intended", schedules: 2000)
        #expect(r.violations > 0)
        let replay = try Runner.replay(try #require(runner.failingTrace))
        let texts = replay.events.map(\.text)
        // A kernel-mode fill under a kernel ASID of version 1 after a new cycle (version 2) began.
        #expect(texts.contains { $0.contains("guest_kernel_mm") && $0.contains("version 1") })
        #expect(texts.contains { $0.contains("version 2") })
        #expect(replay.violations.first?.oracle == "stale-asid")
        #expect(replay.violations.first?.message.contains("guest_kernel_mm") == true)
    }

    /// Interleaving (b): the vcpu_load of a CPU that started a new ASID cycle cancels
    /// the pending lazy regeneration. `propagate-only` has only this hole.
    @Test func holeBIsReachable() throws {
        let (_, runner) = try Self.userOnly(.propagateOnly, schedules: 2000, strategy: .pct)
        let replay = try Runner.replay(try #require(runner.failingTrace))
        let texts = replay.events.map(\.text)
        #expect(texts.contains { $0.contains("vcpu_load on cpu") && $0.contains("last_user_gasid") })
        #expect(texts.contains { $0.contains("version 2") })    // a new ASID cycle happened
        #expect(replay.violations.first?.oracle == "stale-asid")
    }

    /// Interleaving (a): the regeneration was not propagated to the CPU the vcpu
    /// comes back to. `no-cancel-only` has only this hole.
    @Test func holeAIsReachable() throws {
        let (_, runner) = try Self.userOnly(.noCancelOnly, schedules: 2000)
        let replay = try Runner.replay(try #require(runner.failingTrace))
        let texts = replay.events.map(\.text)
        #expect(texts.contains { $0.contains("check_asids on cpu") })
        #expect(texts.contains { $0.contains("migrates") })
        #expect(!texts.contains { $0.contains("vcpu_load on cpu") && $0.contains("last_user_gasid") })   // no reset in this variant
        #expect(replay.violations.first?.oracle == "stale-asid")
    }

    /// Seed 000 as merged: the mmu.c hunk took the vcpu_load reset away (no
    /// hole b), the `[cpu]` typo left hole (a): its failure is interleaving (a).
    @Test func asMergedFailsThroughHoleAOnly() throws {
        for seed: UInt64 in 1...3 {
            let (_, runner) = try Self.userOnly(.asMerged, seed: seed, schedules: 5000)
            let replay = try Runner.replay(try #require(runner.failingTrace))
            let texts = replay.events.map(\.text)
            #expect(!texts.contains { $0.contains("vcpu_load on cpu") && $0.contains("last_user_gasid") })
            #expect(replay.violations.first?.oracle == "stale-asid")
        }
    }

    @Test func parallelModeRunsOnRealThreads() throws {
        let (clean, _) = try run("asid-lazy-regen", "upstream-4.11", mode: .parallel, seconds: 2)
        #expect(clean.violations == 0)
        let (bad, _) = try run("asid-lazy-regen", "pre-fix", mode: .parallel, seconds: 10)
        #expect(bad.violations > 0)
    }
}

/// The ASID allocator against arch/mips/include/asm/mmu_context.h.
@Suite struct ASIDAllocatorTests {
    @Test func cyclesWrapAndFlush() {
        let asids = ASIDAllocator(bits: 2, cpus: 1)
        let tlb = MIPSTLB(cpu: 0, size: 4)
        let mm = MipsMM(name: "mm", cpus: 1)
        #expect(asids.isStale(0, cpu: 0))                   // a zero context is always stale
        #expect(asids.asidCache(0) == 4)                    // asid_first_version
        mm.getNewMMUContext(cpu: 0, asids: asids, tlb: tlb)
        #expect(mm.cpuContext(0) == 5 && !asids.isStale(5, cpu: 0))
        tlb.fill(.init(tag: 1, vpn: 7, pfn: 9, dirty: false))
        for _ in 0..<2 { mm.getNewMMUContext(cpu: 0, asids: asids, tlb: tlb) }
        #expect(asids.newCycles(0) == 0 && tlb.validEntries.count == 1)
        mm.getNewMMUContext(cpu: 0, asids: asids, tlb: tlb)  // 8: ASID 0 of version 2, new cycle
        #expect(mm.cpuContext(0) == 8)
        #expect(asids.newCycles(0) == 1)
        #expect(tlb.validEntries.isEmpty)                    // whole TLB flushed
        #expect(asids.isStale(5, cpu: 0))                    // old version stale now
    }
}

/// kvm_mips_invalidate_guest_tlb() (91e4f1b6073d, v4.9): a guest tlbwr that
/// overwrites a valid entry drops the host entry on this CPU and zeroes the
/// vcpu's user and kernel host ASIDs on every other CPU, in the v4.10 form (the
/// per-vcpu arrays) and the v4.11 form (`cpu_context()` of both guest mms).
@Suite struct GuestTLBInvalidateTests {
    @Test(arguments: [ASIDVariant.preFix, .upstream411])
    func replacedGuestEntryZeroesOtherCPUsASIDs(variant: ASIDVariant) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "cpu1", "vcpu0"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let asids = ASIDAllocator(bits: 3, cpus: 2)
        let tlbs = [MIPSTLB(cpu: 0), MIPSTLB(cpu: 1)]
        let v = TrapEmulVCPU(id: 0, variant: variant, asids: asids, tlbs: tlbs, engine: engine, state: VCPUState(id: 0, cpu: 1),
                             guestRAM: TrapEmulGuestRAM(gfns: 32), startASID: 1, pagesPerProcess: 4, guestTLBSize: 2)
        let runLocks = [SpinLock("run_on_cpu", engine: engine), SpinLock("run_on_cpu", engine: engine)]
        v.runLocks = runLocks
        func user(_ cpu: Int) -> UInt64 { variant.usesPerVCPUArrays ? v.userASIDs.load(cpu) : v.guestUserMM.cpuContext(cpu) }
        func kernel(_ cpu: Int) -> UInt64 { variant.usesPerVCPUArrays ? v.kernelASIDs.load(cpu) : v.guestKernelMM.cpuContext(cpu) }
        func access(_ vpn: Int) { v.guestUserAccess(vpn: vpn) { _, _ in } }
        // cpu1: a guest EntryHi write (kernel ASID there) and user page 0 (user ASID there).
        runLocks[1].withLock {
            v.kvmArchVCPULoad(1)
            v.kvmMipsEmulateCP0WriteEntryHi(2)
            access(0)
        }
        #expect(user(1) != 0 && kernel(1) != 0)
        v.migrate(to: 0)
        runLocks[0].withLock {
            v.kvmArchVCPULoad(0)
            access(0)                                   // guest TLB hit: only the host TLB of cpu0 is filled
            access(1)                                   // guest TLB full: [(0, 2), (1, 2)]
            #expect(tlbs[0].lookup(tag: v.hostUserASID, vpn: 0) != nil)
            #expect(user(1) != 0 && kernel(1) != 0)     // nothing replaced yet
            access(2)                                   // tlbwr replaces (0, 2)
            #expect(tlbs[0].lookup(tag: v.hostUserASID, vpn: 0) == nil)
        }
        #expect(user(1) == 0 && kernel(1) == 0, "cpu1's ASIDs survive the replaced guest entry")
        #expect(user(0) != 0)                           // this CPU keeps its ASID
        #expect(asids.isStale(user(1), cpu: 1))         // the next load on cpu1 regenerates
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// A replaced kseg2/3 entry (`tlb_hi >= KVM_GUEST_KSEG0`: "User address space
    /// doesn't need flushing for KSeg2/3 changes") zeroes the other CPUs' kernel
    /// ASIDs only; v4.11 also drops the kernel GVA PTE and this CPU's kernel-ASID entry.
    @Test(arguments: [ASIDVariant.preFix, .upstream411])
    func replacedKseg23EntryZeroesKernelASIDsOnly(variant: ASIDVariant) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "cpu1", "vcpu0"])
        defer { engine.shutdown() }
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        let asids = ASIDAllocator(bits: 3, cpus: 2)
        let tlbs = [MIPSTLB(cpu: 0), MIPSTLB(cpu: 1)]
        let v = TrapEmulVCPU(id: 0, variant: variant, asids: asids, tlbs: tlbs, engine: engine, state: VCPUState(id: 0, cpu: 1),
                             guestRAM: TrapEmulGuestRAM(gfns: 32), startASID: 1, pagesPerProcess: 2, guestTLBSize: 2)
        let runLocks = [SpinLock("run_on_cpu", engine: engine), SpinLock("run_on_cpu", engine: engine)]
        v.runLocks = runLocks
        func user(_ cpu: Int) -> UInt64 { variant.usesPerVCPUArrays ? v.userASIDs.load(cpu) : v.guestUserMM.cpuContext(cpu) }
        func kernel(_ cpu: Int) -> UInt64 { variant.usesPerVCPUArrays ? v.kernelASIDs.load(cpu) : v.guestKernelMM.cpuContext(cpu) }
        var seen: [TLBOwner] = []
        runLocks[1].withLock {
            v.kvmArchVCPULoad(1)
            v.kvmMipsEmulateCP0WriteEntryHi(2)
            v.guestKernelAccess(vpn: TrapEmulGuestLayout.kseg23FirstVPN) { _, e in seen.append(TLBOwner(raw: e.owner)) }
            v.guestUserAccess(vpn: 0) { _, _ in }       // guest TLB full: [(0x60000, 2), (0, 2)]
        }
        #expect(seen == [.guestKernel(vcpu: 0, guestASID: 2, gfn: 2 * 5 + 3)])
        #expect(user(1) != 0 && kernel(1) != 0)
        v.migrate(to: 0)
        runLocks[0].withLock {
            v.kvmArchVCPULoad(0)
            v.guestKernelAccess(vpn: TrapEmulGuestLayout.kseg23LastVPN) { _, _ in }   // tlbwr replaces (0x60000, 2)
        }
        #expect(kernel(1) == 0, "cpu1's kernel ASID survives the replaced kseg2/3 entry")
        #expect(user(1) != 0, "a kseg2/3 change zeroed cpu1's user ASID")
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }
}
