// SPDX-License-Identifier: GPL-2.0-only
import Testing
import SimExec
import RCU
import KVMCore
@testable import X86
import Harness
import TestSupport

/// A TDP MMU VM driven from the test thread (no actors run): host memory of
/// `pages` pages, one memslot, one vcpu.
struct TDPFixture {
    let engine: SimEngine
    let hostMM: HostMM
    let kvm: ModernKVM
    let mmu: TDPMMU
    let vcpu: X86VCPU

    init(_ variant: TDPMMUVariant = .upstream, pages: Int = 4, bits: Int = 1) {
        engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "vcpu0"])
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        hostMM = HostMM(engine: engine, pages: HostPages(capacity: 64), base: 0x1000, count: pages)
        kvm = ModernKVM(engine: engine, rcu: makeRCU(for: engine), hostMM: hostMM,
                        memslots: Memslots([Memslot(id: 0, baseGfn: 0, npages: pages, userspaceAddr: 0x1000)]))
        mmu = TDPMMU(kvm: kvm, variant: variant, bitsPerLevel: bits, maxTables: 64)
        mmu.attachOracleAndRegisterNotifier()
        vcpu = mmu.createVCPU(kvm.createVCPU(cpu: 0))
    }

    /// The SPTE of `gfn` in the vcpu's root (`.nonPresent` if none).
    func spte(_ gfn: Int) -> SPTE {
        let p = TDPMMUView(mmu).lookup(root: vcpu.root, gfn: gfn)
        return p.isPresent ? SPTE(raw: mmu.arena.words.peek(slot(gfn)!)) : .nonPresent
    }

    /// The leaf slot of `gfn` in the vcpu's root.
    func slot(_ gfn: Int) -> Int? {
        var table = vcpu.root, level = mmu.rootLevel
        while true {
            let s = mmu.arena.slot(table, mmu.spteIndex(gfn, level: level))
            let e = SPTE(raw: mmu.arena.words.peek(s))
            if level == 1 || (e.isShadowPresent && e.isLast(level: level)) { return s }
            guard e.isShadowPresent else { return nil }
            table = e.pfn
            level -= 1
        }
    }

    func done() { kvm.rcu.barrier(); kvm.notifier.arch = nil; engine.shutdown() }
}

/// The TDP MMU's functions against the kernel's rules, one at a time.
@Suite struct TDPMMUTests {
    /// spte_has_volatile_bits() (spte.c): what the CPU or fast_page_fault() may
    /// set without mmu_lock.
    @Test func volatileBitsAreTheKernels() {
        let base = SPTE.leaf(pfn: 5, writable: true, hostWritable: true, executable: true, huge: false, dirty: false)
        #expect(base.hasVolatileBits, "W=1, D=0: the CPU may set D")
        #expect(!SPTE(raw: base.raw | SPTE.dirty).hasVolatileBits, "W=1, D=1, A=1: nothing left to set")
        #expect(SPTE(raw: (base.raw | SPTE.dirty) & ~SPTE.accessed).hasVolatileBits, "A=0: the CPU may set A")
        #expect(SPTE(raw: base.raw & ~SPTE.writable).hasVolatileBits, "MMU-writable but not writable: fast_page_fault may set W")
        let ro = SPTE.leaf(pfn: 5, writable: false, hostWritable: false, executable: true, huge: false, dirty: false)
        #expect(!ro.hasVolatileBits, "read-only, not MMU-writable, accessed")
        #expect(SPTE.frozen.isFrozen && !SPTE.frozen.isShadowPresent && !SPTE.nonPresent.isShadowPresent)
    }

    /// kvm_tdp_mmu_alloc_root() gives a root two references (the vcpu's and the
    /// TDP MMU's); a fault installs a writable, dirty leaf (make_spte() sets D
    /// eagerly) at level 1 and the CPU then reaches it through its TLB.
    @Test func aFaultMapsThePageAndTheCPUUsesIt() {
        let f = TDPFixture()
        defer { f.done() }
        f.vcpu.guestAccess(gfn: 2, .write(42))
        #expect(f.vcpu.root >= 0 && f.mmu.rootCount(f.vcpu.root) == 2)
        let s = f.spte(2)
        #expect(s.isShadowPresent && s.isWritable && s.isDirty && s.isAccessed)
        #expect(s.pfn == f.hostMM.currentPfn(0x1002))
        #expect(f.vcpu.tlbMaps(2) == s.pfn)
        #expect(f.hostMM.pages.content.load(s.pfn) == 42)
        #expect(f.engine.violations.isEmpty, "\(f.engine.violations)")
    }

    /// fast_page_fault(): a write to a present, MMU-writable SPTE without W (as
    /// write-protect dirty logging leaves it; the model's worlds use PML, so
    /// the test clears W itself) is an EPT violation on a present SPTE, and the
    /// lockless fast path sets W with a cmpxchg; the slow path does not run.
    @Test func aWriteProtectionFaultIsFixedByTheFastPath() {
        let f = TDPFixture()
        defer { f.done() }
        f.vcpu.guestAccess(gfn: 2, .write(1))
        let s = f.spte(2)
        f.mmu.arena.words.store(f.slot(2)!, s.raw & ~SPTE.writable)
        f.vcpu.flushTLBAll()
        let faults = f.mmu.counter(.faults)
        f.vcpu.guestAccess(gfn: 2, .write(2))
        #expect(f.mmu.counter(.faults) == faults + 1)
        #expect(f.mmu.counter(.fastFaults) == 1, "the EPT violation on a present SPTE goes to fast_page_fault()")
        #expect(f.spte(2).isWritable && f.spte(2).pfn == s.pfn)
        #expect(f.hostMM.pages.content.load(s.pfn) == 2)
        #expect(f.engine.violations.isEmpty, "\(f.engine.violations)")
    }

    /// The notifier's unmap zaps the leaf, flushes, and the next access faults
    /// the new page in; nothing maps the old page once range_start returned.
    @Test func anInvalidationZapsAndFlushes() {
        let f = TDPFixture()
        defer { f.done() }
        f.vcpu.guestAccess(gfn: 1, .write(7))
        let old = f.spte(1).pfn
        f.hostMM.zap(0x1001..<0x1002)
        #expect(!f.spte(1).isShadowPresent)
        f.vcpu.guestAccess(gfn: 1, .read)
        #expect(f.spte(1).pfn != old || f.hostMM.currentPfn(0x1001) == old)
        #expect(f.mmu.counter(.remoteFlushes) >= 1)
        #expect(f.engine.violations.isEmpty, "\(f.engine.violations)")
    }

    /// kvm_mmu_zap_all_fast(): every root invalid, the vcpu told to drop its
    /// own, the invalid roots zapped under the read lock and freed after a grace
    /// period; the vcpu's next entry loads a new root.
    @Test func theFastZapReplacesTheRoot() {
        let f = TDPFixture()
        defer { f.done() }
        f.vcpu.guestAccess(gfn: 0, .read)
        let first = f.vcpu.root
        f.mmu.kvmMMUZapAllFast()
        #expect(f.mmu.isInvalid(first))
        #expect(f.vcpu.state.requests & X86VCPU.reqMMUFreeObsoleteRoots != 0)
        f.vcpu.guestAccess(gfn: 0, .read)
        f.kvm.rcu.barrier()
        #expect(f.vcpu.root >= 0 && !f.mmu.isInvalid(f.vcpu.root))
        #expect(f.mmu.roots == [f.vcpu.root], "the old root left the list once its last reference was put")
        #expect(f.engine.violations.isEmpty, "\(f.engine.violations)")
    }

    /// handle_removed_pt(): a zapped root's tables are unlinked and freed only
    /// after a grace period (call_rcu), never at once.
    @Test func removedTablesWaitForAGracePeriod() {
        let f = TDPFixture()
        defer { f.done() }
        for g in 0..<4 { f.vcpu.guestAccess(gfn: g, .read) }
        let before = f.mmu.arena.liveTables
        f.kvm.rcu.readLock()                                 // a walker in the middle of a walk
        f.mmu.kvmMMUZapAllFast()
        #expect(f.mmu.arena.liveTables == before, "nothing freed while a reader may hold a table")
        f.kvm.rcu.readUnlock()
        f.kvm.rcu.barrier()
        #expect(f.mmu.arena.liveTables < before)
    }

    /// kvm_tdp_mmu_write_spte(): with ba3a6120a4e7 the write of an SPTE with
    /// volatile bits is an xchg that returns what it replaced, Dirty bit
    /// included; before it, a plain store from the caller's snapshot drops it.
    @Test func aWriteUnderTheWriteLockKeepsTheDirtyBitOnlyWithTheFix() {
        for (variant, loses) in [(TDPMMUVariant.volatileSPTEPreFix, true), (.volatileSPTEFixed, false), (.upstream, false)] {
            let f = TDPFixture(variant)
            defer { f.done() }
            f.vcpu.guestAccess(gfn: 3, .read)
            let s = f.slot(3)!
            let snapshot = SPTE(raw: f.mmu.arena.words.load(s) & ~SPTE.dirty)
            f.mmu.arena.words.store(s, snapshot.raw)                 // W=1, D=0: volatile
            f.mmu.arena.words.fetchOr(s, SPTE.dirty)                 // the CPU sets D after KVM's read
            f.kvm.mmuLock.writeLock()
            let replaced = f.mmu.writeSPTE(s, old: snapshot, new: .nonPresent, level: 1)
            f.kvm.mmuLock.writeUnlock()
            #expect(replaced.isDirty == !loses, "\(variant)")
            #expect(f.engine.violations.contains { $0.oracle == "lost-dirty" } == loses, "\(variant)")
        }
    }

    /// Variants differ from upstream in exactly the code of their fix: one
    /// field of `TDPMMUCode` for a pre-fix (or a first fix that needed its own),
    /// none for a fix.
    @Test func eachVariantChangesOneThing() {
        let up = Mirror(reflecting: TDPMMUCode(.upstream)).children.map { "\($0.value)" }
        for v in TDPMMUVariant.allCases {
            let c = Mirror(reflecting: TDPMMUCode(v)).children.map { "\($0.value)" }
            let diffs = zip(c, up).filter { $0 != $1 }.count
            #expect(diffs == (v == .upstream || v.rawValue.hasSuffix("-fixed") ? 0 : 1), "\(v)")
            #expect(v.commit != nil)
        }
    }
}

/// The races of tdp-mmu-race as the regression suite pins them, and what their
/// minimal traces show.
@Suite struct TDPMMURaceTests {
    /// The finding's checked-in trace shows the interleaving: the first
    /// memslot's zap, then the second memslot's handler starting with
    /// flush = false and dropping mmu_lock before any flush.
    @Test func theFindingsTraceShowsTheLostFlush() throws {
        let t = try #require(try CheckedInTraces.all().first { $0.name.hasPrefix("tdp-mmu-race--upstream--memslots=2") }).trace
        let r = try Runner.replay(t)
        let texts = r.events.map(\.text)
        let drop = try #require(texts.lastIndex { $0.contains("drop write lock") })
        let slot1 = try #require(texts[..<drop].lastIndex { $0.contains("kvm_unmap_gfn_range(slot 1") && $0.contains("flush = false") })
        let slot0 = try #require(texts[..<slot1].lastIndex { $0.contains("kvm_unmap_gfn_range(slot 0") })
        #expect(texts[slot0..<slot1].contains { $0.contains("tdp_mmu_zap_leafs") && $0.contains("zapped") }, "slot 0's handler zapped a leaf")
        let between = Array(texts[slot0..<drop])
        #expect(!between.contains { $0.contains("kvm_flush_remote_tlbs") }, "no flush between the zap and the unlock: \(between)")
        #expect(r.violations.first?.oracle == "stale-tlb-after-unlock")
    }

    /// A pre-fix variant is found on real threads too (T3: the notifier
    /// returns while an invalid root still maps the page).
    @Test func aPreFixRaceShowsOnRealThreads() throws {
        let (r, _) = try TestSupport.run("tdp-mmu-race", "zap-all-roots-pre-fix", mode: .parallel, seconds: 20)
        #expect(r.violations > 0)
        let (u, _) = try TestSupport.run("tdp-mmu-race", "upstream", mode: .parallel, seconds: 2)
        #expect(u.violations == 0, "\(u.firstViolation?.description ?? "")")
    }
}
