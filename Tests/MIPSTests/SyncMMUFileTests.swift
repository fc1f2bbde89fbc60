// SPDX-License-Identifier: GPL-2.0-only
import Testing
import Foundation
import SimExec
@testable import KVMCore
@testable import MIPS
@testable import Catalog
import Harness
import TestSupport

/// File-backed guest RAM (`--guest-ram file`: a MAP_SHARED mapping of a file,
/// `HostMMDetail.sharedFile`) and its writeback through page_mkclean(), and
/// reclaim's young checks (`--reclaim-young check`,
/// `HostMMDetail.reclaimChecksYoung`), against the v4.11 text quoted in
/// docs/mechanisms/sync-mmu.md.
@Suite struct SyncMMUFileTests {
    func world(_ variant: SyncMMUVariant = .patched, form: HostMMForm = .v411, guestRam: GuestRAM = .file,
               reclaimYoung: ReclaimYoung = .ignore) -> (SimEngine, SyncMMUWorld) {
        let engine = SimEngine(mode: .deterministic, actorNames: ["cpu0", "cpu1", "vcpu0", "vcpu1"])
        engine.beginSchedule(strategy: RandomStrategy(), scheduleSeed: 1)
        var config = SyncMMURaceScenario().defaultConfig(mode: .deterministic)
        config.options.hostMM = form
        config.options.markAccessed = .v613
        config.options.guestRam = guestRam
        config.options.reclaimYoung = reclaimYoung
        return (engine, SyncMMUWorld(engine: engine, variant: variant, config: config, seed: 1))
    }

    /// do_read_fault() maps a page cache page read-only and clean (write-notify);
    /// a write goes through wp_page_shared(): the same page, writable, dirty,
    /// set_page_dirty(). No zero page, no copy.
    @Test func faultsFollowWriteNotify() throws {
        let (engine, w) = world()
        defer { engine.shutdown() }
        let mm = w.hostMM, pages = mm.pages, hva = mm.base + 1
        #expect(pages.zeroPfn == nil)
        mm.swapIn(hva)                                                 // a host read
        let p = mm.pte(hva)
        #expect(p.isPresent && !p.isWrite && !p.isDirty && !pages.isDirty(p.pfn))
        mm.hostWrite(hva)
        let q = mm.pte(hva)
        #expect(q.pfn == p.pfn && q.isWrite && q.isDirty && pages.isDirty(q.pfn))
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// Writeback of a page KVM maps writable: page_mkclean_one() write-protects
    /// and cleans the host PTE and, in v4.11, calls invalidate_page under the
    /// page table lock (v4.13: range start/end), so KVM's GPA PTE goes and
    /// mmu_notifier_seq moves; the page is clean and the file holds its content.
    @Test(arguments: [HostMMForm.v411, .v413])
    func writebackCleansThroughPageMkclean(form: HostMMForm) throws {
        let (engine, w) = world(form: form)
        defer { engine.shutdown() }
        let mm = w.hostMM, pages = mm.pages, kvm = w.kvm, hva = mm.base
        let spy = NotifierSpy(mm)
        mm.register(spy)
        w.contexts[0].runOp(GuestOp(gfn: 0, write: true))             // slow path: gup write, wp_page_shared
        let gpa = w.mmu.table.lookup(0)
        #expect(gpa.isPresent && gpa.isWrite && gpa.isDirty)
        let pfn = gpa.pfn
        #expect(pages.isDirty(pfn) && mm.pte(hva).isWrite)
        let seq = kvm.mmuNotifierSeq
        mm.writeback(hva)
        #expect(w.mmu.table.lookup(0) == .none)
        #expect(kvm.mmuNotifierSeq == seq + 1 && kvm.mmuNotifierCount == 0)
        let p = mm.pte(hva)
        #expect(p.isPresent && p.pfn == pfn && !p.isWrite && !p.isDirty && !pages.isDirty(pfn))
        #expect(mm.swapContent.load(0) == pages.content.load(pfn) && mm.underWriteback.load(0) == 0)
        switch form {
        case .v411: #expect(spy.calls == ["invalidate_page 0x7f000000, host PTE pfn \(pfn) [--Y], page table lock held"], "\(spy.calls)")
        case .v413: #expect(spy.calls.count == 2 && spy.calls[0] == "range_start 0x7f000000, host PTE pfn \(pfn) [WDY]"
                            && spy.calls[1] == "range_end 0x7f000000, host PTE pfn \(pfn) [--Y]", "\(spy.calls)")
        }
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// The issue's case: a guest write after writeback took its copy. With the
    /// kernel's page_mkclean_one() the write faults (KVM's mapping is gone), the
    /// page is dirty again, reclaim keeps it, the next writeback writes it, and
    /// a page dropped clean and read back holds the write.
    @Test(arguments: [HostMMForm.v411, .v413])
    func aWriteAfterWritebackIsNeverLost(form: HostMMForm) throws {
        let (engine, w) = world(form: form)
        defer { engine.shutdown() }
        let mm = w.hostMM, pages = mm.pages, hva = mm.base
        let vcpu = w.contexts[0]
        vcpu.runOp(GuestOp(gfn: 0, write: true))
        mm.writeback(hva)
        vcpu.runOp(GuestOp(gfn: 0, write: true))                     // after the copy: faults again
        let pfn = try #require(mm.currentPfn(hva))
        let written = pages.content.load(pfn)
        #expect(pages.isDirty(pfn) && mm.swapContent.load(0) != written)
        mm.swapOut(hva)                                                // dirty: unmapped, kept for the flusher
        #expect(mm.currentPfn(hva) == pfn && pages.isDirty(pfn))
        mm.writeback(hva)
        #expect(mm.swapContent.load(0) == written && !pages.isDirty(pfn))
        mm.swapOut(hva)                                                // clean: dropped
        #expect(mm.currentPfn(hva) == nil)
        vcpu.runOp(GuestOp(gfn: 0, write: false))                    // read back from the file
        #expect(pages.content.load(try #require(mm.currentPfn(hva))) == written)
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// The planted bug: page_mkclean_one() without its notifier call. KVM keeps
    /// its writable, dirty GPA PTE across writeback, the guest's next write goes
    /// through it without a fault (and without making the page dirty), and
    /// reclaim drops the clean page: lost-dirty-page (wp-write fires first, at
    /// the write through the mapping the host write-protected).
    @Test(arguments: [HostMMForm.v411, .v413])
    func droppingPageMkcleansNotifierLosesTheWrite(form: HostMMForm) throws {
        let (engine, w) = world(form: form)
        defer { engine.shutdown() }
        let mm = w.hostMM, hva = mm.base
        mm.plantedMkcleanSkipsNotifier = true
        let vcpu = w.contexts[0]
        vcpu.runOp(GuestOp(gfn: 0, write: true))
        mm.writeback(hva)
        #expect(w.mmu.table.lookup(0).isWrite)                       // KVM was not told
        vcpu.runOp(GuestOp(gfn: 0, write: true))
        mm.swapOut(hva)
        let oracles = engine.violations.map(\.oracle)
        #expect(oracles.first == "wp-write", "\(engine.violations)")
        #expect(oracles.contains("lost-dirty-page"), "\(engine.violations)")
    }

    /// try_to_unmap_one() of v4.11 calls ptep_clear_flush_young_notify() and
    /// fails on a young page (SWAP_FAIL), and page_referenced() before it keeps
    /// a referenced page: both reach KVM through clear_flush_young
    /// (kvm_age_hva()), which ages the GPA PTE. Reclaim unmaps the page only
    /// when neither the host nor KVM saw an access since the last aging.
    @Test(arguments: [GuestRAM.anon, .file])
    func reclaimKeepsYoungPages(guestRam: GuestRAM) throws {
        let (engine, w) = world(guestRam: guestRam, reclaimYoung: .check)
        defer { engine.shutdown() }
        let mm = w.hostMM, hva = mm.base
        let spy = NotifierSpy(mm)
        mm.register(spy)
        w.contexts[0].runOp(GuestOp(gfn: 0, write: true))
        #expect(w.mmu.table.lookup(0).isYoung && mm.pte(hva).isYoung)
        mm.swapOut(hva)                                                // page_referenced(): young, kept
        #expect(mm.pte(hva).isPresent && !mm.pte(hva).isYoung)
        let gpa = w.mmu.table.lookup(0)
        #expect(gpa.isPresent && !gpa.isYoung)                         // kvm_age_hva()
        #expect(spy.calls.isEmpty, "\(spy.calls)")                      // no invalidation reached a subscriber
        w.contexts[0].runOp(GuestOp(gfn: 0, write: false))            // the guest touches it: young again
        #expect(w.mmu.table.lookup(0).isYoung)
        mm.swapOut(hva)                                                // referenced again: kept
        #expect(mm.pte(hva).isPresent)
        mm.swapOut(hva)                                                // old everywhere: unmapped
        #expect(!mm.pte(hva).isPresent && w.mmu.table.lookup(0) == .none)
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// The window page_referenced() leaves: the guest makes the page young
    /// after it and before try_to_unmap_one(), whose own
    /// ptep_clear_flush_young_notify() sees it through KVM and fails.
    @Test func tryToUnmapOneFailsOnAPageMadeYoungAfterPageReferenced() throws {
        let (engine, w) = world(guestRam: .anon, reclaimYoung: .check)
        defer { engine.shutdown() }
        let mm = w.hostMM, hva = mm.base
        w.contexts[0].runOp(GuestOp(gfn: 0, write: true))
        let victim = mm.pte(hva)
        mm.withPageTableLock { _ = mm.ptepClearFlushYoungNotify(hva) }   // page_referenced() found it young earlier
        #expect(mm.pageReferenced(hva, pfn: victim.pfn) == false)       // now old everywhere
        w.contexts[0].runOp(GuestOp(gfn: 0, write: false))             // the guest's access between the two
        mm.swapOutV411(hva, victim: victim)                              // try_to_unmap_one()
        #expect(mm.pte(hva).isPresent && w.mmu.table.lookup(0).isPresent, "SWAP_FAIL expected")
        #expect(engine.violations.isEmpty, "\(engine.violations)")
    }

    /// The knobs: accepted by sync-mmu-race/stress, recorded in a config only
    /// when set (traces of runs without them keep their config), refused by
    /// mmu-seq-wrap.
    @Test func knobs() throws {
        for scenario in ["sync-mmu-race", "sync-mmu-stress"] {
            let (r, _) = try run(scenario, "no-change-pte", schedules: 20) {
                try $0.set(knob: "guest-ram", to: "file")
                try $0.set(knob: "reclaim-young", to: "check")
                try $0.set(knob: "mark-accessed", to: "v6.13")
            }
            #expect(r.violations == 0, "\(r.firstViolation?.description ?? "")")
        }
        var o = SyncMMURaceScenario().defaultConfig(mode: .deterministic).options
        let plain = String(decoding: try JSONEncoder().encode(o), as: UTF8.self)
        #expect(!plain.contains("guestRam") && !plain.contains("reclaimYoung"))
        o.guestRam = .file; o.reclaimYoung = .check
        let back = try JSONDecoder().decode(MIPSGPAOptions.self, from: try JSONEncoder().encode(o))
        #expect(back == o)
        #expect(throws: InputError.self) {
            _ = try run("mmu-seq-wrap", "patched", schedules: 1) { try $0.set(knob: "guest-ram", to: "file") }
        }
        #expect(throws: InputError.self) {
            var s = try ScenarioRegistry.named("sync-mmu-race").selection(variant: "patched", mode: .deterministic)
            try s.set(knob: "guest-ram", to: "tmpfs")
        }
    }
}
