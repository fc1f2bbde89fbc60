// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
import KVMCore
@testable import ARM64
import Harness
import TestSupport

/// An arm64 VM driven from the test thread (no actors run): hugetlbfs-backed
/// RAM of `pages` pages (blocks of 2), one memslot, one vcpu loaded on cpu0.
struct Stage2Fixture {
    let engine: SimEngine
    let hostMM: HostMM
    let kvm: ModernKVM
    let domain: InnerShareableDomain
    let mmu: Stage2MMU
    let vcpu: ARM64VCPU

    init(_ variant: Stage2Variant = .upstream, free: UnlinkedTableFree = .rcu, pages: Int = 4) {
        engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "vcpu0"])
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 64, hugePages: 4, blockPages: 2), base: 0x1000, count: pages, hugeBlock: 2)
        hostMM.vmasChange = true
        kvm = ModernKVM(engine: engine, rcu: makeRCU(for: engine), hostMM: hostMM,
                        memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: pages, userspaceAddr: 0x1000)]))
        domain = InnerShareableDomain(engine: engine, cpus: 2, vmids: 256, pagesPerVMID: pages, blockPages: 2)
        let vmids = ARM64VMIDs(engine: engine, scheme: Stage2Code(variant).vmid, vmidBits: 8, domain: domain)
        mmu = Stage2MMU(kvm: kvm, variant: variant, vmIndex: 0, bitsPerLevel: 1, maxTables: 32, freeUnlinked: free, domain: domain, vmids: vmids)
        mmu.attachOracleAndRegisterNotifier()
        vcpu = mmu.createVCPU(kvm.createVCPU(cpu: 0))
        vcpu.load(on: 0)
    }

    var slot: Memslot { kvm.memslots.slots[0] }
    /// The valid leaf mapping `gfn` and its level, if any.
    func leaf(_ gfn: Int) -> (KVMPTE, Int)? { mmu.peekLeaf(gfn) }
    /// The table linked from the level-2 entry over `gfn`'s block, if one is.
    func blockTable(_ gfn: Int) -> Int? {
        let pgt = mmu.pgt
        let l1 = KVMPTE(raw: pgt.arena.words.peek(pgt.arena.slot(pgt.pgd, pgt.index(gfn, level: 1))))
        guard l1.isTable(level: 1, lastLevel: 3) else { return nil }
        let l2 = KVMPTE(raw: pgt.arena.words.peek(pgt.arena.slot(l1.pfn, pgt.index(gfn, level: 2))))
        return l2.isTable(level: 2, lastLevel: 3) ? l2.pfn : nil
    }
    /// The table's state in the arena: free, live or retired (waiting for RCU).
    func state(_ t: Int) -> UInt64 { mmu.pgt.arena.state.peek(t) & 3 }
    func tlb(_ gfn: Int) -> Int? {
        let cpu = domain.cpus[0]
        return cpu.translation.withLock { cpu.tlbEntry(vmid: mmu.currentVMID, gfn: gfn)?.pfn }
    }
    var violations: [String] { engine.violations.map(\.oracle) }

    /// A block mapped by a write, then split by dirty logging: the slot
    /// write-protected and a write to gfn 0 mapping that page alone.
    func mapBlockThenSplitItByLogging() {
        vcpu.guestAccess(gfn: 1, .write(7))
        mmu.setDirtyLogging(slot, true)
        vcpu.guestAccess(gfn: 0, .write(8))
    }

    func done() { vcpu.put(); kvm.rcu.barrier(); kvm.notifier.arch = nil; engine.shutdown() }
}

/// The stage-2 walkers and fault path against the kernel's rules, one at a time.
@Suite struct Stage2Tests {
    /// A CPU's TLB is filled, read and invalidated with its translation lock
    /// held (the access against a TLBI's DSB); lockdep reports a fill, lookup
    /// or invalidation without it, and nothing with it.
    /// A world reset in place empties every TLB entry a fill wrote, all its
    /// fields, also of a VMID a TLBI has cleared since (it clears only
    /// `filledBy`): the TLB is as built, not copied back.
    @Test func aResetEmptiesEveryEntryAFillWrote() {
        let f = Stage2Fixture()
        defer { f.done() }
        let cpu = f.domain.cpus[1]
        cpu.translation.withLock {
            cpu.fill(vmid: 3, vm: 0, firstGfn: 0, pages: 2, pfn: 9, level: 2, writable: true, executable: true, agingStamp: 5)
            cpu.fill(vmid: 200, vm: 0, firstGfn: 1, pages: 1, pfn: 4, level: 3, writable: false, executable: false, agingStamp: 6)
        }
        cpu.invalidateVMID(3)
        #expect((0..<cpu.tlb.words.count).contains { cpu.tlb.words.peek($0) != 0 })
        f.domain.resetForReuse()
        #expect(!(0..<cpu.tlb.words.count).contains { cpu.tlb.words.peek($0) != 0 })
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }

    @Test func theTranslationLockRuleIsChecked() {
        let f = Stage2Fixture()
        defer { f.done() }
        f.engine.stopOnViolation = false
        let cpu = f.domain.cpus[1]
        cpu.fill(vmid: 3, vm: 0, firstGfn: 0, pages: 1, pfn: 9, level: 3, writable: true, executable: false, agingStamp: 0)
        _ = cpu.tlbEntry(vmid: 3, gfn: 0)
        #expect(f.violations == ["lockdep", "lockdep"])
        #expect(f.engine.violations.first?.message.contains("TLB fill on CPU 1 without its translation lock") == true)
        cpu.translation.withLock {
            cpu.fill(vmid: 3, vm: 0, firstGfn: 1, pages: 1, pfn: 9, level: 3, writable: true, executable: false, agingStamp: 0)
            _ = cpu.tlbEntry(vmid: 3, gfn: 1)
        }
        cpu.invalidateAll()
        #expect(f.engine.violationTotal == 2)
        #expect(!cpu.translation.isHeldByCaller)
    }

    /// user_mem_abort() on a hugetlbfs VMA maps a level-2 block, and the CPU's
    /// walk fills the TLB for every page of it.
    @Test func aHugetlbFaultMapsABlock() {
        let f = Stage2Fixture()
        defer { f.done() }
        f.vcpu.guestAccess(gfn: 1, .write(7))
        let (pte, level) = try! #require(f.leaf(1))
        #expect(level == 2 && pte.isWritable && pte.pfn % 2 == 0, "\(pte) at level \(level)")
        #expect(f.tlb(0) == pte.pfn && f.tlb(1) == pte.pfn + 1)
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }

    /// Dirty logging: the slot is write-protected, a write then faults on the
    /// block with logging active, which forces pages: break-before-make
    /// replaces the block with a table (its TLB entries go with the TLBI) and
    /// maps the written page alone.
    @Test func loggingSplitsABlockWithBreakBeforeMake() {
        let f = Stage2Fixture()
        defer { f.done() }
        f.vcpu.guestAccess(gfn: 1, .write(7))
        f.mmu.setDirtyLogging(f.slot, true)
        #expect(f.leaf(0)?.0.isWritable == false, "kvm_mmu_wp_memory_region() write-protected the block")
        f.vcpu.guestAccess(gfn: 0, .write(8))
        let (pte, level) = try! #require(f.leaf(0))
        #expect(level == 3 && pte.isWritable)
        #expect(f.leaf(1) == nil, "the rest of the block faults in again, page by page")
        #expect(f.tlb(1) == nil, "the block's TLB entries went with its break")
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }

    /// Once logging is off, a fault in the block maps it whole again over the
    /// table (the map walker's pre-order callback) and the table is freed
    /// after a grace period on the host.
    @Test func aBlockReplacesTheTableAndRCUFreesIt() {
        let f = Stage2Fixture()
        defer { f.done() }
        f.mapBlockThenSplitItByLogging()
        let table = try! #require(f.blockTable(0))
        f.mmu.setDirtyLogging(f.slot, false)
        f.kvm.rcu.readLock()                                  // a reader the grace period must wait for
        f.vcpu.guestAccess(gfn: 1, .read)
        #expect(f.leaf(1)?.1 == 2, "a block again")
        #expect(f.state(table) == TableArena.retired, "unlinked, waiting for its grace period")
        f.kvm.rcu.readUnlock()
        f.kvm.rcu.barrier()
        #expect(f.state(table) == TableArena.free)
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }

    /// R2: with tables freed at once (pKVM), the walker before a9f0e3d5a089
    /// descends through its stale snapshot into the table it just freed; the
    /// fixed walker reloads the entry and steps over the new block.
    @Test(arguments: [Stage2Variant.walkerReloadPreFix, .walkerReloadFixed])
    func theWalkerReloadsAfterThePreOrderCallback(_ v: Stage2Variant) {
        let f = Stage2Fixture(v, free: .immediate)
        defer { f.done() }
        f.mapBlockThenSplitItByLogging()
        f.mmu.setDirtyLogging(f.slot, false)
        f.vcpu.guestAccess(gfn: 1, .read)
        if v == .walkerReloadPreFix {
            #expect(f.violations.contains("walker-use-after-free"))
        } else {
            #expect(f.violations.isEmpty, "\(f.engine.violations)")
        }
    }

    /// The host configuration of the same walker: RCU keeps the table alive
    /// through the stale descent.
    @Test func theHostsRCUHidesTheStaleDescent() {
        let f = Stage2Fixture(.walkerReloadPreFix, free: .rcu)
        defer { f.done() }
        f.mapBlockThenSplitItByLogging()
        f.mmu.setDirtyLogging(f.slot, false)
        f.vcpu.guestAccess(gfn: 1, .read)
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }

    /// The notifier's unmap (mmu_lock held for write) clears the leaves,
    /// invalidates them on every CPU, and frees a table it emptied at once.
    @Test func unmapFreesAnEmptiedTableAtOnce() {
        let f = Stage2Fixture()
        defer { f.done() }
        f.mapBlockThenSplitItByLogging()
        let table = try! #require(f.blockTable(0))
        #expect(f.tlb(0) != nil)
        f.hostMM.zap(0x1000..<0x1002)
        #expect(f.leaf(0) == nil && f.tlb(0) == nil)
        #expect(f.state(table) == TableArena.free, "put_page() of the emptied table, no grace period")
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }

    /// A permission fault at the leaf's granule relaxes the leaf in place.
    @Test func aPermissionFaultRelaxesInPlace() {
        let f = Stage2Fixture()
        defer { f.done() }
        f.hostMM.mprotect(0x1000..<0x1002, writable: false)
        f.vcpu.guestAccess(gfn: 0, .read)
        let before = try! #require(f.leaf(0))
        #expect(!before.0.isWritable)
        f.hostMM.mprotect(0x1000..<0x1002, writable: true)
        f.vcpu.guestAccess(gfn: 0, .write(3))
        let after = try! #require(f.leaf(0))
        #expect(after.0.isWritable && after.0.pfn == before.0.pfn && after.1 == before.1)
        #expect(f.violations.isEmpty, "\(f.engine.violations)")
    }
}

/// The races of stage2-race as the regression suite pins them, and what
/// their minimal traces show.
@Suite struct Stage2RaceTests {
    static func trace(_ prefix: String) throws -> TraceFile {
        try #require(try CheckedInTraces.all().first { $0.name.hasPrefix(prefix) }).trace
    }

    /// R1: the VMM's mmap(MAP_FIXED) runs between the fault's VMA lookup and
    /// its snapshot; the fault then maps the old VMA's block size from a 4K
    /// page, and a page of the range lands on memory the host does not map there.
    @Test func r1MapsTheOldVMAsSizeOverNewPages() throws {
        let r = try Runner.replay(try Self.trace("stage2-race--vma-seq-pre-fix"))
        let texts = r.events.map(\.text)
        let remap = try #require(texts.firstIndex { $0.contains("mmap(MAP_FIXED)") && $0.contains("anonymous 4K pages") })
        let install = try #require(texts.firstIndex { $0.hasPrefix("stage-2: IPA page") })
        #expect(remap < install)
        #expect(r.violations.first?.oracle == "I1")
    }

    /// Issue 20, class 3 (a budget shorter than the race): R1's pre-fix code
    /// is the fixed code with one check moved, and the random search at the
    /// fixed variant's budget (5,000 schedules) does not reach it, while PCT
    /// at the same budget does (seed 1: schedule 1,167; seeds 1-8: 36-3,778,
    /// trace format 2). This is why every fixed variant has a PCT case beside
    /// its random one (RegressionSuiteTests).
    @Test func r1NeedsPCTWithinTheFixedVariantsBudget() throws {
        let pct = try run("stage2-race", "vma-seq-pre-fix", schedules: 5_000, strategy: .pct, lengths: RunOptions.searchLengths).0
        #expect(pct.violations > 0)
        let random = try run("stage2-race", "vma-seq-pre-fix", schedules: 5_000, lengths: RunOptions.searchLengths).0
        #expect(random.violations == 0,
                "the random search now finds R1 within 5,000 schedules: class 3 needs a deeper witness than R1")
    }

    /// R3: the commit message's diagram, step by step.
    @Test func r3IsTheCommitMessagesInterleaving() throws {
        let r = try Runner.replay(try Self.trace("stage2-race--vmid-load-pre-fix"))
        let texts = r.events.map(\.text).filter { $0.contains("vcpu_load") || $0.contains("kvm_arm_vmid_update") }
        #expect(texts.count == 4)
        #expect(texts[0].contains("VMID 0") && texts[1].contains("VMID 0"), "both vcpus load VTTBR before a VMID exists")
        #expect(texts[2].contains("new_vmid") && !texts[3].contains("new_vmid"), "one allocates, the other finds it allocated")
        #expect(r.violations.first?.oracle == "vmid")
    }

    /// A pre-fix race shows on real threads too, and upstream stays clean there.
    /// The search stops at the first violation (1-8 s alone); its bound is
    /// 60 s, as ParallelReproductionTests', since one full-suite run on a busy
    /// machine found nothing in 20.
    @Test func aPreFixRaceShowsOnRealThreads() throws {
        let (r, _) = try TestSupport.run("stage2-stress", "vmid-load-pre-fix", mode: .parallel, seconds: 60)
        #expect(r.violations > 0)
        let (u, _) = try TestSupport.run("stage2-stress", "upstream", mode: .parallel, seconds: 2)
        #expect(u.violations == 0, "\(u.firstViolation?.description ?? "")")
    }
}
