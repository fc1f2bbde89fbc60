// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
@testable import KVMCore

/// An arch of today's hook shape that records every call.
final class RecordingGFNArch: KVMGFNRangeArch, @unchecked Sendable {
    var calls: [String] = []
    var young = false
    let lock: RWLock
    init(lock: RWLock) { self.lock = lock }
    func unmapGFNRange(_ r: KVMGFNRange) -> Bool {
        lock.assertHeldWrite("kvm_unmap_gfn_range")
        calls.append("unmap slot\(r.slot.id) \(r.start)..<\(r.end)"); return true
    }
    func ageGFN(_ r: KVMGFNRange) -> Bool { calls.append("age slot\(r.slot.id) \(r.start)..<\(r.end)"); return young }
    func testAgeGFN(_ r: KVMGFNRange) -> Bool { calls.append("test_age slot\(r.slot.id) \(r.start)"); return young }
    func flushRemoteTLBs() { lock.assertHeldWrite("kvm_flush_remote_tlbs"); calls.append("flush") }
}

/// Two memslots: gfns 0..<4 at hva 100..<104, gfns 16..<20 at hva 104..<108.
func makeModernNotifier() -> (SimEngine, KVMMMUNotifier, RecordingGFNArch) {
    let engine = SimEngine(mode: .deterministic, actorNames: ["a"])
    engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
    let lock = RWLock(read: "read_lock(&kvm->mmu_lock)", write: "write_lock(&kvm->mmu_lock)", lockName: "kvm->mmu_lock",
                      waitLockPoint: "spin_lock(&kvm->mmu_lock.wait_lock)", engine: engine)
    let n = KVMMMUNotifier(engine: engine, mmuLock: lock, memslots: Memslots([
        Memslot(id: 1, baseGfn: 16, npages: 4, userspaceAddr: 104), Memslot(id: 0, baseGfn: 0, npages: 4, userspaceAddr: 100)]))
    let arch = RecordingGFNArch(lock: lock)
    n.arch = arch
    return (engine, n, arch)
}

/// Today's generic notifier protocol (v6.x kvm_main.c / kvm_host.h): the
/// memslot walk, the gfn range an invalidation publishes, and the retry
/// checks a fault makes against it.
@Suite struct KVMMMUNotifierTests {
    @Test func anInvalidationSplitsByMemslotAndPublishesItsGFNRange() {
        let (engine, n, arch) = makeModernNotifier()
        defer { engine.shutdown() }
        let snap = n.invalidate.seq
        n.invalidateRangeStart(hvas: 102..<106)
        #expect(arch.calls == ["unmap slot0 2..<4", "unmap slot1 16..<18", "flush"])
        #expect(n.invalidate.inProgress == 1 && n.mnActiveInvalidateCount == 1)
        #expect(n.invalidate.range == 2..<18, "one range covering both slots' parts")
        n.mmuLock.readLock()
        #expect(n.invalidate.retryGFN(snap, gfn: 3))
        #expect(n.invalidate.retryGFN(snap, gfn: 10), "a false positive inside the covering range is allowed")
        #expect(!n.invalidate.retryGFN(snap, gfn: 18))
        n.mmuLock.readUnlock()
        n.invalidateRangeEnd(hvas: 102..<106)
        #expect(n.invalidate.inProgress == 0 && n.mnActiveInvalidateCount == 0)
        #expect(n.invalidate.seq == snap + 1)
        n.mmuLock.readLock()
        #expect(n.invalidate.retryGFN(snap, gfn: 18), "the seq moved on")
        #expect(!n.invalidate.retryGFN(n.invalidate.seq, gfn: 3))
        n.mmuLock.readUnlock()
        #expect(engine.violations.isEmpty)
    }

    /// Concurrent invalidations: the range grows to cover both and stays until
    /// the last one ends.
    @Test func concurrentRangesAccumulate() {
        let (engine, n, _) = makeModernNotifier()
        defer { engine.shutdown() }
        n.invalidateRangeStart(hvas: 100..<101)
        n.invalidateRangeStart(hvas: 107..<108)
        #expect(n.invalidate.range == 0..<20 && n.invalidate.inProgress == 2)
        n.invalidateRangeEnd(hvas: 100..<101)
        #expect(n.invalidate.range == 0..<20 && n.invalidate.inProgress == 1)
        n.invalidateRangeEnd(hvas: 107..<108)
        #expect(n.invalidate.inProgress == 0)
        n.invalidateRangeStart(hvas: 105..<106)
        #expect(n.invalidate.range == 17..<18, "the first begin after none resets the range")
        n.invalidateRangeEnd(hvas: 105..<106)
        #expect(engine.violations.isEmpty)
    }

    /// No memslot in the range: mmu_lock is not taken, nothing counts as in
    /// progress, and the seq does not move (range_start and range_end agree).
    @Test func aRangeWithoutMemslotsTakesNoLock() {
        let (engine, n, arch) = makeModernNotifier()
        defer { engine.shutdown() }
        n.invalidateRangeStart(hvas: 200..<300)
        #expect(n.invalidate.inProgress == 0 && n.mnActiveInvalidateCount == 1 && arch.calls.isEmpty)
        n.invalidateRangeEnd(hvas: 200..<300)
        #expect(n.invalidate.seq == 0 && n.mnActiveInvalidateCount == 0)
        #expect(engine.violations.isEmpty)
    }

    @Test func agingFlushesOnlyWhenAskedAndYoung() {
        let (engine, n, arch) = makeModernNotifier()
        defer { engine.shutdown() }
        #expect(!n.clearFlushYoung(hvas: 100..<108))
        #expect(arch.calls == ["age slot0 0..<4", "age slot1 16..<20"], "nothing young: no flush")
        arch.calls = []; arch.young = true
        #expect(n.clearFlushYoung(hvas: 103..<105))
        #expect(arch.calls == ["age slot0 3..<4", "age slot1 16..<17", "flush"])
        arch.calls = []
        #expect(n.clearYoung(hvas: 100..<102) && arch.calls == ["age slot0 0..<2"])
        arch.calls = []
        #expect(n.testYoung(hva: 106) && arch.calls == ["test_age slot1 18"])
    }

    /// The kernel's own checks are an oracle: a range added with nothing in
    /// progress fires its WARN_ON_ONCE(); begin without the write lock is a
    /// lockdep report.
    @Test func theKernelsWarningsAndLockingRulesAreChecked() {
        let (engine, n, _) = makeModernNotifier()
        defer { engine.shutdown() }
        n.mmuLock.writeLock()
        n.invalidate.rangeAdd(0..<1)
        n.mmuLock.writeUnlock()
        #expect(engine.violations.first?.oracle == Oracle.kvmWarn.name)

        let (engine2, n2, _) = makeModernNotifier()
        defer { engine2.shutdown() }
        n2.mmuLock.readLock()
        n2.invalidate.begin()
        #expect(engine2.violations.first?.oracle == Oracle.lockdep.name)
        n2.mmuLock.readUnlock()
    }

    /// The unsafe pre-check agrees with the locked one when nothing changes
    /// between them.
    @Test func theUnsafePreCheckMatchesTheLockedOne() {
        let (engine, n, _) = makeModernNotifier()
        defer { engine.shutdown() }
        let snap = n.invalidate.seq
        n.invalidateRangeStart(hvas: 101..<102)
        n.mmuLock.readLock()
        for gfn: UInt64 in [0, 1, 2, 16] {
            #expect(n.invalidate.retryGFNUnsafe(snap, gfn: gfn) == n.invalidate.retryGFN(snap, gfn: gfn))
        }
        n.mmuLock.readUnlock()
        n.invalidateRangeEnd(hvas: 101..<102)
    }
}
