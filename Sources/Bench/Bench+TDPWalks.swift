// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU
import KVMCore
import X86
#if canImport(Glibc)
import Glibc
#endif

/// Figure 8: the x86 TDP MMU's walk lock-free under RCU against the same walk
/// under `mmu_lock` held for read, on the model's own tables and qrwlock.
extension Bench {
    /// The walk of kvm_tdp_mmu_fast_pf_get_last_sptep() under RCU alone
    /// (walk_shadow_page_lockless_begin()), as fast_page_fault() walks.
    struct TDPWalkUnderRCU: WalkWorkload {
        let mmu: TDPMMU, root: Int, rcu: LibURCU, slot: Memslot
        func walk(_ p: Int) -> UInt64 {
            rcu.readLock()
            defer { rcu.readUnlock() }
            return mmu.lastSPTEP(root: root, gfn: p)?.spte.raw ?? 0
        }
        func update(_ g: Int) { tdpAgeAndTouch(mmu, root: root, rcu: rcu, slot: slot, gfn: g) }
    }

    /// The same walk under `mmu_lock` held for read and RCU, as
    /// kvm_tdp_mmu_map() walks in the fault path (the read lock does not keep
    /// tables alive: other readers zap them, so the kernel takes RCU as well).
    struct TDPWalkUnderReadLock: WalkWorkload {
        let mmu: TDPMMU, root: Int, rcu: LibURCU, slot: Memslot
        func walk(_ p: Int) -> UInt64 {
            mmu.kvm.mmuLock.readLock()
            rcu.readLock()
            defer { rcu.readUnlock(); mmu.kvm.mmuLock.readUnlock() }
            return mmu.lastSPTEP(root: root, gfn: p)?.spte.raw ?? 0
        }
        func update(_ g: Int) { tdpAgeAndTouch(mmu, root: root, rcu: rcu, slot: slot, gfn: g) }
    }

    /// The writer's update, the same in both: kvm_age_gfn() of one gfn with
    /// `mmu_lock` held for write (the clear_young notifier: the Accessed bit
    /// cleared with a LOCK AND), then the Accessed bit set again with an atomic
    /// OR and no lock, as the CPU's page walker does on its next access, so that
    /// every update writes the SPTE's cache line.
    static func tdpAgeAndTouch(_ mmu: TDPMMU, root: Int, rcu: LibURCU, slot: Memslot, gfn: Int) {
        mmu.kvm.mmuLock.writeLock()
        _ = mmu.ageGFN(KVMGFNRange(slot: slot, start: UInt64(gfn), end: UInt64(gfn + 1), mayBlock: false))
        mmu.kvm.mmuLock.writeUnlock()
        rcu.readLock()
        if let leaf = mmu.lastSPTEP(root: root, gfn: gfn) { mmu.arena.words.fetchOr(leaf.sptep, SPTE.accessed) }
        rcu.readUnlock()
    }

    /// A TDP MMU VM in parallel mode with 512-entry tables (four levels, as
    /// x86's) and `pages` gfns faulted in by one vcpu: every walk reaches a 4K leaf.
    static func populatedTDPMMU(pages: Int, engine: SimEngine, rcu: LibURCU) -> (mmu: TDPMMU, vcpu: X86VCPU, slot: Memslot) {
        let slot = Memslot(id: 0, baseGfn: 0, npages: pages, userspaceAddr: 0x100000)
        let hostMM = HostMM(engine: engine, pages: HostPages(capacity: 2 * pages), base: 0x100000, count: pages)
        let kvm = ModernKVM(engine: engine, rcu: rcu, hostMM: hostMM, memslots: Memslots([slot]))
        let mmu = TDPMMU(kvm: kvm, variant: .upstream, bitsPerLevel: 9, maxTables: 8 + pages / 512)
        let vcpu = mmu.createVCPU(kvm.createVCPU(cpu: 0))
        let faulter = BenchThread { for g in 0..<pages { vcpu.guestAccess(gfn: g, .read) } }
        faulter.join()
        return (mmu, vcpu, slot)
    }

    /// Readers walking random gfns of a 65,536-page TDP MMU against one writer
    /// aging gfns (`sideBySide`, the schedule of figure 1): lock-free under
    /// RCU, and under the model's qrwlock held for read.
    static func tdpWalk(_ r: inout Report, seconds: Double) {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        let rcu = LibURCU(engine: engine)
        let pages = 1 << 16
        let (mmu, vcpu, slot) = populatedTDPMMU(pages: pages, engine: engine, rcu: rcu)
        let order = randomPages(1 << 16, below: pages)
        let m = sideBySide(TDPWalkUnderRCU(mmu: mmu, root: vcpu.root, rcu: rcu, slot: slot),
                           TDPWalkUnderReadLock(mmu: mmu, root: vcpu.root, rcu: rcu, slot: slot),
                           seconds: seconds, pages: pages, order: order)
        r.tdpWalkReaders = m.readers
        r.tdpWalkPages = pages
        r.tdpRCUWalksPerSecond = m.lockFree.walks
        r.tdpWriterUpdatesPerSecondRCU = m.lockFree.updates
        r.tdpReadLockWalksPerSecond = m.locked.walks
        r.tdpWriterUpdatesPerSecondReadLock = m.locked.updates
        r.tdpRCUVsReadLockRatio = m.ratio
        r.tdpRCUWalksPerSecondOneReader = m.lockFreeOneReader
        r.tdpReadLockWalksPerSecondOneReader = m.lockedOneReader
        r.tdpRCUVsReadLockRatioOneReader = m.ratioOneReader
        rcu.barrier()
    }
}
