// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import KVMCore
@testable import ARM64

/// A CPU of a test world: runs one body on its executor.
actor VMIDTestCPU: SimActor {
    nonisolated let executor: SimExecutor
    init(_ e: SimExecutor) { executor = e }
    func run(_ body: @Sendable () -> Void) { body() }
}

/// A counter and a flag cell closures can share (not kernel memory: no points).
final class TestCell: @unchecked Sendable {
    private let w = AtomicWords(count: 1)
    init(_ v: UInt64 = 0) { w.store(0, v) }
    deinit { w.free() }
    var value: UInt64 { w.peek(0) }
    func set(_ v: UInt64) { w.store(0, v) }
    func bump() { w.add(0, 1) }
}

func spawnCPU(_ engine: SimEngine, _ i: Int, _ body: @escaping @Sendable () -> Void) {
    let cpu = VMIDTestCPU(engine.executors[i])
    engine.spawn(on: cpu.executor) { await cpu.run(body) }
}

/// A deterministic engine whose schedule has begun (the test calls the model
/// from its own thread, or spawns actors on `names`).
func makeVMIDEngine(_ names: [String] = ["cpu0", "cpu1"], seed: UInt64 = 1, points: PointGranularity = .named) -> SimEngine {
    let engine = SimEngine(mode: .deterministic, actorNames: names, points: points)
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: seed)
    return engine
}

/// The arm64 VMID allocators: vmid.c (v5.18+) and the three pre-5.18 forms of
/// update_vttbr() (virt/kvm/arm/arm.c).
@Suite struct VMIDAllocatorTests {
    // MARK: - vmid.c (v5.18-v6.6; v6.7-v6.13's bool)

    /// The first update allocates; a CPU whose active_vmids is non-zero
    /// (VMID_ACTIVE_INVALID after an earlier vcpu_put counts) then takes the
    /// fast path. A CPU that never ran a vcpu has active_vmids 0: it takes
    /// cpu_vmid_lock, finds the VMID current and returns false too.
    @Test func firstUpdateAllocatesIndexOneAndOtherCPUsTakeTheFastPath() {
        let engine = makeVMIDEngine()
        defer { engine.shutdown() }
        let flushes = TestCell()
        let alloc = VMIDAllocator(engine: engine, vmidBits: 8, cpus: 3, flushVMContext: { flushes.bump() })
        let vm = KVMVMID()
        #expect(vm.value == 0, "a zeroed struct kvm: never allocated")
        #expect(alloc.generation == 1 << 8)

        #expect(alloc.update(vm, cpu: 0), "new_vmid() ran")
        #expect(vm.value == (1 << 8) | 1, "idx 1 in generation 1 << bits")
        #expect(alloc.vttbrVMID(vm.value) == 1)
        #expect(alloc.generationMatches(vm.value))
        #expect(alloc.active(cpu: 0) == vm.value)
        #expect(alloc.isAllocated(index: 1) && !alloc.isAllocated(index: 0))
        #expect(alloc.lockAcquisitions == 1)

        alloc.clearActive(cpu: 1)                                // some vcpu was put on cpu1 before
        #expect(!alloc.update(vm, cpu: 1), "cpu1: the fast path")
        #expect(alloc.active(cpu: 1) == vm.value)
        #expect(!alloc.update(vm, cpu: 0), "cpu0 again: the fast path")
        #expect(alloc.lockAcquisitions == 1, "the fast path took cpu_vmid_lock")

        #expect(!alloc.update(vm, cpu: 2), "cpu2 (active_vmids 0): slow path, no new_vmid()")
        #expect(alloc.lockAcquisitions == 2 && alloc.active(cpu: 2) == vm.value)
        #expect(vm.value == (1 << 8) | 1 && flushes.value == 0 && alloc.rollovers == 0)
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// vmidBits 2: indices 1, 2, 3; two CPUs. A fourth VM rolls over: the
    /// generation moves on, __kvm_flush_vm_context runs once, the VMIDs
    /// active on the CPUs keep their index, and no two VMs of the generation
    /// share one.
    @Test func rolloverKeepsActiveIndicesAndFlushesOnce() {
        let engine = makeVMIDEngine()
        defer { engine.shutdown() }
        let flushes = TestCell()
        let alloc = VMIDAllocator(engine: engine, vmidBits: 2, cpus: 2, flushVMContext: { flushes.bump() })
        let (a, b, c, d) = (KVMVMID(), KVMVMID(), KVMVMID(), KVMVMID())
        #expect(alloc.update(a, cpu: 0) && alloc.update(b, cpu: 1) && alloc.update(c, cpu: 0))
        #expect([a, b, c].map { alloc.vttbrVMID($0.value) } == [1, 2, 3])
        #expect(alloc.generation == 4 && flushes.value == 0)

        // cpu0 runs c, cpu1 runs b; d finds no free index.
        #expect(alloc.update(d, cpu: 1))
        #expect(alloc.generation == 8, "bumped by VMID_FIRST_VERSION")
        #expect(flushes.value == 1 && alloc.rollovers == 1)
        #expect(alloc.reserved(cpu: 0) == c.value && alloc.reserved(cpu: 1) == b.value, "flush_context() reserved the active VMIDs")
        #expect(alloc.active(cpu: 0) == 0, "xchg'd to 0 by the rollover")
        #expect(d.value == 8 | 1, "a (active nowhere) lost index 1")

        // c and b come back on their CPUs: same index, current generation.
        #expect(alloc.update(c, cpu: 0), "active_vmids 0: slow path, new_vmid() finds the reservation")
        #expect(c.value == 8 | 3)
        #expect(alloc.update(b, cpu: 1))
        #expect(b.value == 8 | 2)
        #expect(alloc.reserved(cpu: 0) == c.value && alloc.reserved(cpu: 1) == b.value, "check_update_reserved_vmid() moved them on")
        let current = [a, b, c, d].filter { alloc.generationMatches($0.value) }
        #expect(current.count == 3)
        #expect(Set(current.map { alloc.vttbrVMID($0.value) }).count == 3, "no two VMs of the generation share an index")
        #expect(flushes.value == 1)

        // a needs an index: none left (d 1, b 2, c 3): a second rollover.
        #expect(alloc.update(a, cpu: 0))
        #expect(alloc.generation == 12 && flushes.value == 2)
        #expect(a.value == 12 | 1)
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// 7 bits: vmid_map spans two words; every index 1...127 is handed out
    /// once, in order, before the 128th VM rolls over.
    @Test func everyIndexAcrossTheMapWordsBeforeARollover() {
        let engine = makeVMIDEngine()
        defer { engine.shutdown() }
        let flushes = TestCell()
        let alloc = VMIDAllocator(engine: engine, vmidBits: 7, cpus: 2, flushVMContext: { flushes.bump() })
        let vms = (0..<128).map { _ in KVMVMID() }
        for vm in vms.prefix(127) { _ = alloc.update(vm, cpu: 0) }
        #expect(vms.prefix(127).map { alloc.vttbrVMID($0.value) } == Array(1...127))
        #expect(flushes.value == 0)
        _ = alloc.update(vms[127], cpu: 1)
        #expect(flushes.value == 1 && alloc.generation == 2 << 7)
        #expect(vms[127].value == 2 << 7 | 1, "index 1 is free again: cpu0 reserved 127, cpu1 nothing")
        #expect(alloc.reserved(cpu: 0) == vms[126].value && alloc.reserved(cpu: 1) == 0)
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// kvm_arm_vmid_clear_active() at vcpu_put: the CPU reserves nothing at
    /// the next rollover, so its VM's index is handed out again; without it
    /// the index stays reserved.
    @Test func clearActiveThenRolloverFreesTheIndex() {
        for clear in [true, false] {
            let engine = makeVMIDEngine()
            defer { engine.shutdown() }
            let flushes = TestCell()
            let alloc = VMIDAllocator(engine: engine, vmidBits: 2, cpus: 2, flushVMContext: { flushes.bump() })
            let (a, b, c, d) = (KVMVMID(), KVMVMID(), KVMVMID(), KVMVMID())
            _ = alloc.update(a, cpu: 0)                          // idx 1
            _ = alloc.update(b, cpu: 1)                          // idx 2
            if clear {
                alloc.clearActive(cpu: 0)
                #expect(alloc.active(cpu: 0) == alloc.activeInvalid)
            }
            _ = alloc.update(c, cpu: 1)                          // idx 3, cpu1 now runs c
            #expect(alloc.update(d, cpu: 0), "no free index: rollover")
            #expect(flushes.value == 1)
            if clear {
                #expect(alloc.reserved(cpu: 0) == alloc.activeInvalid, "VMID_ACTIVE_INVALID (idx 0) reserved: nothing")
                #expect(d.value == 8 | 1, "a's index 1 went to d")
                #expect(!alloc.generationMatches(a.value))
                // b was active nowhere, but index 2 is still free: it keeps it.
                #expect(alloc.update(b, cpu: 1))
                #expect(b.value == 8 | 2)
            } else {
                #expect(alloc.reserved(cpu: 0) == a.value, "a was active on cpu0: reserved")
                #expect(d.value == 8 | 2, "d took b's index, a's stays reserved")
                #expect(alloc.update(a, cpu: 1), "a on cpu1 later: new_vmid() finds cpu0's reservation")
                #expect(a.value == 8 | 1)
            }
            #expect(flushes.value == 1)
            #expect(engine.violations.isEmpty, "\(engine.violations)")
        }
    }

    /// The fast path takes no lock: a vcpu whose active_vmids is non-zero
    /// (VMID_ACTIVE_INVALID after vcpu_put counts) and whose VMID is current
    /// completes kvm_arm_vmid_update() while another CPU holds cpu_vmid_lock
    /// and waits for it. If the fast path took the lock, every schedule would
    /// deadlock.
    @Test func fastPathTakesNoLock() {
        for points in [PointGranularity.named, .accesses] {
            for seed in UInt64(0)..<20 {
                let engine = makeVMIDEngine(["holder", "vcpu"], seed: seed, points: points)
                defer { engine.shutdown() }
                let alloc = VMIDAllocator(engine: engine, vmidBits: 8, cpus: 2, flushVMContext: {})
                let vm = KVMVMID()
                #expect(alloc.update(vm, cpu: 1))
                alloc.clearActive(cpu: 1)
                let before = alloc.lockAcquisitions
                let holding = TestCell(), done = TestCell(), updated = TestCell(7)
                spawnCPU(engine, 0) {
                    alloc.cpuVMIDLock.lock()
                    holding.set(1)
                    engine.waitUntil("test: holder waits for the vcpu") { done.value == 1 }
                    alloc.cpuVMIDLock.unlock()
                }
                spawnCPU(engine, 1) {
                    engine.waitUntil("test: vcpu waits for the holder") { holding.value == 1 }
                    updated.set(alloc.update(vm, cpu: 1) ? 1 : 0)
                    done.set(1)
                }
                engine.runSchedule()
                #expect(!engine.deadlocked, "\(points) seed \(seed): kvm_arm_vmid_update() waited for cpu_vmid_lock on its fast path")
                #expect(updated.value == 0)
                #expect(alloc.active(cpu: 1) == vm.value)
                #expect(alloc.lockAcquisitions == before, "the fast path counted a cpu_vmid_lock acquisition")
                #expect(engine.violations.isEmpty, "\(engine.violations)")
            }
        }
    }

    /// cpu0 updates its running VM a (index 1) while cpu1 rolls over for d.
    /// Whichever comes first (the fast path's cmpxchg before the rollover's
    /// xchg, or after it and then the slow path), a keeps index 1 and d gets
    /// another. Across schedules both orders happen: the points let the
    /// rollover in between the fast path's reads and its cmpxchg.
    @Test func rolloverRacingTheFastPathKeepsTheRunningIndex() {
        for points in [PointGranularity.named, .accesses] {
            var outcomes = Set<UInt64>()
            for seed in UInt64(0)..<200 {
                let engine = makeVMIDEngine(seed: seed, points: points)
                defer { engine.shutdown() }
                let flushes = TestCell()
                let alloc = VMIDAllocator(engine: engine, vmidBits: 2, cpus: 2, flushVMContext: { flushes.bump() })
                let (a, b, c, d) = (KVMVMID(), KVMVMID(), KVMVMID(), KVMVMID())
                _ = alloc.update(a, cpu: 0)
                _ = alloc.update(b, cpu: 1)
                _ = alloc.update(c, cpu: 1)                      // cpu0 runs a (1), cpu1 runs c (3)
                let updated = TestCell(7)
                spawnCPU(engine, 0) { updated.set(alloc.update(a, cpu: 0) ? 1 : 0) }
                spawnCPU(engine, 1) { _ = alloc.update(d, cpu: 1) }
                engine.runSchedule()
                outcomes.insert(updated.value)
                #expect(flushes.value == 1, "seed \(seed)")
                #expect(alloc.vttbrVMID(a.value) == 1, "\(points) seed \(seed): a moved to index \(alloc.vttbrVMID(a.value)) while it runs on cpu0")
                #expect(alloc.vttbrVMID(d.value) != 1, "\(points) seed \(seed): d got the index cpu0 runs a with")
                #expect(alloc.vttbrVMID(alloc.active(cpu: 0)) == 1 || alloc.vttbrVMID(alloc.reserved(cpu: 0)) == 1, "seed \(seed)")
                #expect(engine.violations.isEmpty, "\(points) seed \(seed): \(engine.violations)")
            }
            #expect(outcomes == [0, 1], "\(points): the fast path (false) and the slow path after the rollover (true) both happen")
        }
    }

    @Test func tooFewVMIDsForTheCPUsWarns() {
        for (bits, cpus, warns) in [(2, 2, false), (2, 3, true), (1, 1, true)] {
            let engine = makeVMIDEngine()
            defer { engine.shutdown() }
            _ = VMIDAllocator(engine: engine, vmidBits: bits, cpus: cpus, flushVMContext: {})
            #expect(engine.violations.map(\.oracle) == (warns ? [Oracle.kvmWarn.name] : []), "\(bits) bits, \(cpus) CPUs")
        }
    }

    // MARK: - virt/kvm/arm/arm.c, v4.15-v5.17

    /// Each form: the first allocation ever rolls over (kvm_next_vmid is a
    /// zeroed static), three VMIDs per generation with 2 bits, the fourth VM
    /// rolls over again with force_vm_exit() and the flush, stale VMs take a
    /// new VMID, and need_new_vmid_gen() is false once update_vttbr() returns.
    @Test(arguments: LegacyVMIDForm.allCases)
    func legacyAllocatesAndRollsOver(_ form: LegacyVMIDForm) {
        let engine = makeVMIDEngine()
        defer { engine.shutdown() }
        let exits = TestCell(), flushes = TestCell()
        let alloc = LegacyVMIDAllocator(engine: engine, vmidBits: 2, form: form,
                                        forceVMExit: { exits.bump() }, flushVMContext: { flushes.bump() })
        #expect(alloc.generation == 1 && alloc.nextVMID == 0)
        let vms = (0..<4).map { _ in LegacyKVMVMID() }
        #expect(alloc.needNewVMIDGen(vms[0]), "vmid_gen 0 is invalid")

        alloc.updateVTTBR(vms[0])
        #expect(alloc.generation == 2 && exits.value == 1 && flushes.value == 1, "the first allocation rolls over")
        #expect(!alloc.needNewVMIDGen(vms[0]) && alloc.entryVMID(vms[0]) == 1)
        alloc.updateVTTBR(vms[1])
        alloc.updateVTTBR(vms[2])
        #expect(vms.prefix(3).map { alloc.entryVMID($0) } == [1, 2, 3])
        #expect(alloc.nextVMID == 0, "kvm_next_vmid wrapped")
        #expect(exits.value == 1 && flushes.value == 1)

        alloc.updateVTTBR(vms[3])
        #expect(alloc.generation == 3 && exits.value == 2 && flushes.value == 2 && alloc.rollovers == 2)
        #expect(!alloc.needNewVMIDGen(vms[3]) && alloc.entryVMID(vms[3]) == 1)
        #expect(vms.prefix(3).allSatisfy { alloc.needNewVMIDGen($0) }, "every VM of generation 2 is stale")

        alloc.updateVTTBR(vms[0])
        #expect(!alloc.needNewVMIDGen(vms[0]) && alloc.entryVMID(vms[0]) == 2)
        alloc.updateVTTBR(vms[0])
        #expect(alloc.entryVMID(vms[0]) == 2 && alloc.nextVMID == 3, "a current VM keeps its VMID")
        #expect(exits.value == 2 && flushes.value == 2)
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// A stale VM (generation 2, VMID 1) whose VMID 1 now belongs to another
    /// VM: the roller gives it VMID 2 while a vcpu of it makes the run loop's
    /// final, lock-free need_new_vmid_gen() check and enters. Writing vmid_gen
    /// before vttbr lets the vcpu pass the check and enter with VMID 1
    /// (v4.15-v4.18, and v4.19, whose rwlock does not cover that check:
    /// fb544d1ca65a's message); the v5.0 order never does.
    @Test(arguments: LegacyVMIDForm.allCases)
    func legacyFinalCheckSeesHalfPublishedVMID(_ form: LegacyVMIDForm) {
        let stale = staleEntries(form) { alloc, vm in
            alloc.engine.point("test: local_irq_disable(); smp_store_mb(vcpu->mode, IN_GUEST_MODE)")
            guard !alloc.needNewVMIDGen(vm) else { return nil }
            alloc.engine.point("test: enter the guest")
            return alloc.entryVMID(vm)
        }
        #expect(stale == (form != .vttbrBeforeGen), "\(form)")
    }

    /// The same through update_vttbr()'s own first check: lock-free in
    /// v4.15-v4.18 (f0cf47d939d0's race), under read_lock in v4.19, lock-free
    /// again but ordered in v5.0.
    @Test(arguments: LegacyVMIDForm.allCases)
    func legacyUpdateVTTBRFirstCheckSeesHalfPublishedVMID(_ form: LegacyVMIDForm) {
        let stale = staleEntries(form) { alloc, vm in
            alloc.updateVTTBR(vm)
            alloc.engine.point("test: enter the guest")
            return alloc.entryVMID(vm)
        }
        #expect(stale == (form == .genBeforeVTTBR), "\(form)")
    }
}

/// Runs 300 schedules of: cpu0 allocates for a stale VM, cpu1 arrives while
/// cpu0 holds kvm_vmid_lock and runs `vcpu` on the VM (nil: did not enter). Whether some schedule entered with a VMID other
/// than the one the VM ends with.
private func staleEntries(_ form: LegacyVMIDForm,
                          _ vcpu: @escaping @Sendable (LegacyVMIDAllocator, LegacyKVMVMID) -> Int?) -> Bool {
    var staleSeen = false
    for seed in UInt64(0)..<300 {
        let engine = makeVMIDEngine(["roller", "vcpu"], seed: seed)
        defer { engine.shutdown() }
        let alloc = LegacyVMIDAllocator(engine: engine, vmidBits: 2, form: form, forceVMExit: {}, flushVMContext: {})
        let vms = (0..<4).map { _ in LegacyKVMVMID() }
        for vm in vms { alloc.updateVTTBR(vm) }                  // VMIDs 1, 2, 3; vms[3] rolls over to VMID 1
        let a = vms[0]
        #expect(alloc.needNewVMIDGen(a) && alloc.entryVMID(a) == 1 && alloc.entryVMID(vms[3]) == 1)
        let entered = TestCell(0), rollerDone = TestCell(0)
        spawnCPU(engine, 0) { alloc.updateVTTBR(a); rollerDone.set(1) }
        spawnCPU(engine, 1) {
            // Arrive while the roller is inside kvm_vmid_lock (or done): where the windows are.
            engine.waitUntil("test: vcpu arrives") { alloc.isVMIDLockHeld || rollerDone.value == 1 }
            if let e = vcpu(alloc, a) { entered.set(UInt64(e) + 1) }
        }
        engine.runSchedule()
        #expect(engine.violations.isEmpty && !engine.deadlocked, "\(form) seed \(seed): \(engine.violations)")
        #expect(alloc.entryVMID(a) == 2 && !alloc.needNewVMIDGen(a))
        if entered.value != 0 && Int(entered.value) - 1 != alloc.entryVMID(a) { staleSeen = true }
    }
    return staleSeen
}
