// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// A minimal architecture for generic (virt/kvm) mechanisms, so that a race in
/// the generic code does not have to borrow a real architecture: a secondary
/// MMU of one entry per gfn (a direct map reduced to the facts the notifier
/// contract speaks about), no TLB, and the fault protocol every architecture
/// shares (kvm_mips_map_page(), x86's direct_page_fault(), arm64's
/// user_mem_abort() all have this shape): snapshot `mmu_notifier_seq`,
/// gfn_to_pfn_prot() outside the lock, take `mmu_lock`, `mmu_notifier_retry()`,
/// install, drop the page reference.
///
/// Its hooks follow the kernel's contract for them: unmap clears the entries of
/// the range (and asks for a TLB flush), change_pte replaces a present entry
/// only (as x86 and arm64 do; MIPS also installed into an absent one), aging
/// clears young bits. The `MMUOracle` watches its entries.
///
/// Locking: entries change only under `kvm->mmu_lock` (asserted); guest
/// accesses read them with atomics (the hardware walk).
public final class MinimalArchMMU: KVMArchMMU, SecondaryMMUView, @unchecked Sendable {
    public static let oracles: [Oracle] = MMUOracle.oracles
    public static let markRetry = CoverageMark("generic: fault mmu_notifier_retry taken")

    public unowned(unsafe) let kvm: KVM
    let engine: SimEngine
    /// Per gfn: the entry (a `PTE`), 0 when none.
    let entries: AtomicWords
    /// The oracle of `entries` (attached to the KVM).
    public private(set) var oracle: MMUOracle!

    public init(kvm: KVM) {
        self.kvm = kvm
        engine = kvm.engine
        entries = AtomicWords(count: kvm.memslots.maxGfn, kernel: true)
        oracle = MMUOracle(engine: kvm.engine, hostMM: kvm.hostMM, memslots: kvm.memslots, notifier: kvm.notifier, view: MinimalView(self))
        kvm.arch = self
        kvm.attach(oracle: oracle)
        kvm.registerMMUNotifier()
    }

    deinit { entries.free() }

    public func mapping(ofGfn gfn: Int) -> PTE { gfn < entries.count ? PTE(raw: entries.load(gfn)) : .none }

    // MARK: - notifier hooks (mmu_lock held)

    func gfns(_ range: Range<Int>) -> [Int] { range.compactMap { kvm.memslots.hvaToGfn($0) } }

    public func unmapHvaRange(_ range: Range<Int>) -> Bool {
        kvm.mmuLock.assertHeld("kvm_unmap_hva_range()")
        var flush = false
        for g in gfns(range) where entries.load(g) != 0 { entries.store(g, 0); flush = true }
        return flush
    }

    public func setSpteHva(_ hva: Int, _ pte: PTE) {
        kvm.mmuLock.assertHeld("kvm_set_spte_hva()")
        guard let g = kvm.memslots.hvaToGfn(hva), PTE(raw: entries.load(g)).isPresent else { return }
        entries.store(g, pte.wrprotect().raw)                         // the new page, read-only until a write fault
        kvm.flushRemoteTLBs()
    }

    public func ageHva(_ range: Range<Int>) -> Bool {
        kvm.mmuLock.assertHeld("kvm_age_hva()")
        var young = false
        for g in gfns(range) {
            let p = PTE(raw: entries.load(g))
            if p.isPresent && p.isYoung { entries.store(g, p.mkold().raw); young = true }
        }
        return young
    }

    public func testAgeHva(_ hva: Int) -> Bool {
        kvm.mmuLock.assertHeld("kvm_test_age_hva()")
        guard let g = kvm.memslots.hvaToGfn(hva) else { return false }
        return PTE(raw: entries.load(g)).isYoung
    }

    // MARK: - the fault path

    /// The generic fault: map `gfn` for a read or write. Returns false for a
    /// fault the host refuses (MMIO) or a stopping run.
    public func fault(_ vcpu: VCPUState, gfn: Int, write: Bool) -> Bool {
        while !engine.stopRequested {
            let mmuSeq = kvm.mmuNotifierSeq
            smp_rmb()
            guard let got = kvm.gfnToPfnProt(gfn, writeFault: write) else { return false }
            engine.point("fault:after_gfn_to_pfn_prot")
            kvm.mmuLock.lock()
            if kvm.mmuNotifierRetry(mmuSeq) {
                engine.cover(Self.markRetry)
                oracle.retryTaken(vcpu: vcpu.id, snapshotSeq: mmuSeq)
                kvm.mmuLock.unlock()
                kvm.releasePfnClean(got.pfn)
                engine.yieldPoint("fault:retry")
                continue
            }
            var flags = PTE.present | PTE.read | PTE.young
            if got.writable { flags |= PTE.write | (write ? PTE.dirty : 0) }
            let entry = PTE(pfn: got.pfn, flags: flags)
            oracle.installingMapping(gfn: gfn, pte: entry, mmuSeq: mmuSeq)
            entries.store(gfn, entry.raw)
            engine.event("vcpu\(vcpu.id): fault: gfn \(gfn) -> \(entry)")
            kvm.mmuLock.unlock()
            kvm.releasePfnClean(got.pfn)
            return true
        }
        return false
    }

    /// A guest access, in guest mode (so that kvm_flush_remote_tlbs() waits for
    /// it: the hardware's use of an entry ends before the flush's IPI is acked):
    /// through the entry if it allows it, else exit, fault, and enter again.
    /// Every access is checked by the oracle.
    public func guestAccess(_ vcpu: VCPUState, gfn: Int, write: Bool, value: UInt64) {
        for _ in 0..<4 {
            _ = vcpu.checkRequest(VCPUState.reqTLBFlush)              // no TLB to flush: the entries are the translation
            engine.point("vcpu_enter_guest")
            guard vcpu.enterGuestMode() else { engine.yieldPoint("vcpu_enter_guest:cancelled"); continue }
            let p = PTE(raw: entries.load(gfn))
            if p.isPresent && (!write || p.isWrite) {
                oracle.guestAccess(vcpu: vcpu.id, gfn: gfn, pfn: p.pfn, write: write ? value : nil, via: "the secondary MMU")
                if write && kvm.hostMM.pages.isInUse(p.pfn) { kvm.hostMM.pages.content.store(p.pfn, value) }
                vcpu.exitGuestMode()
                return
            }
            vcpu.exitGuestMode()
            guard fault(vcpu, gfn: gfn, write: write) else { return }
        }
    }
}

/// The oracle's view of the minimal arch (no reference back to the oracle).
final class MinimalView: SecondaryMMUView, @unchecked Sendable {
    unowned(unsafe) let arch: MinimalArchMMU
    init(_ arch: MinimalArchMMU) { self.arch = arch }
    func mapping(ofGfn gfn: Int) -> PTE { arch.mapping(ofGfn: gfn) }
}
