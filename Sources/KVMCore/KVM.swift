// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU

/// kvm_make_all_cpus_request() (virt/kvm/kvm_main.c): set `req` on every vcpu,
/// then wait until each vcpu that was in guest mode has left it (the IPI ack).
/// A vcpu handles the request before it enters the guest again.
public func kvmMakeAllCPUsRequest(_ vcpus: [VCPUState], _ req: UInt64, engine: SimEngine) {
    var waitFor: [(VCPUState, UInt64)] = []
    for v in vcpus {
        v.makeRequest(req)
        smp_mb()
        let exits = v.exits
        if v.exitingGuestMode() != .outsideGuestMode { waitFor.append((v, exits)) }
    }
    guard !waitFor.isEmpty else { return }
    engine.waitUntil("kvm_make_all_cpus_request:wait_for_ack") {
        waitFor.allSatisfy { $0.0.mode == .outsideGuestMode || $0.0.exits != $0.1 }
    }
}

/// The architecture's MMU-notifier hooks (`kvm_arch_*` / `kvm_*_hva*` in
/// arch/<arch>/kvm). All are called with `kvm->mmu_lock` held. Page ranges are
/// host virtual page numbers.
public protocol KVMArchMMU: AnyObject, Sendable {
    /// kvm_unmap_hva_range(): returns whether the generic code must flush TLBs.
    func unmapHvaRange(_ range: Range<Int>) -> Bool
    /// kvm_set_spte_hva().
    func setSpteHva(_ hva: Int, _ pte: PTE)
    /// kvm_age_hva(): returns whether any mapping was young.
    func ageHva(_ range: Range<Int>) -> Bool
    /// kvm_test_age_hva().
    func testAgeHva(_ hva: Int) -> Bool
}

/// `struct kvm`: one VM, its memslots, its GPA page table, `mmu_lock` and the MMU
/// notifier state, and the generic MMU-notifier callbacks of virt/kvm/kvm_main.c
/// (v4.9 names: `mmu_notifier_seq`, `mmu_notifier_count`).
///
/// Locking rules:
/// - `mmuLock` (kvm->mmu_lock, a spinlock) serialises every writer of the GPA
///   table and every change of `mmu_notifier_seq` / `mmu_notifier_count`.
/// - `mmu_notifier_seq` is read without the lock by a faulting vcpu before it
///   looks up a pfn (then smp_rmb()), and compared again under the lock by
///   `mmuNotifierRetry`.
/// - GPA-table readers that do not take `mmu_lock` walk inside an RCU read section.
public final class KVM: MMUNotifierSubscriber, @unchecked Sendable {
    public let engine: SimEngine
    public let rcu: any RCUDomain
    public let hostMM: HostMM
    public let memslots: Memslots
    public let gpaTable: PageTable
    public let mmuLock: SpinLock
    public private(set) var vcpus: [VCPUState] = []
    public let tlbs: [HostTLB]
    public var arch: KVMArchMMU!
    /// mmu_notifier_seq (0), mmu_notifier_count (1); the oracle's TLB fill stamp
    /// (`tlbFillStampWord`) two cache lines away, so that its increments at every
    /// TLB refill on every vcpu do not bounce the line the fault path reads.
    private let notifierWords = AtomicWords(count: KVM.tlbFillStampWord + 1)
    private static let tlbFillStampWord = 16
    public let oracle: MMUOracle
    /// Whether KVM implements `.change_pte()` (true in every kernel that had it).
    public var handlesChangePTE = true

    public init(engine: SimEngine, rcu: any RCUDomain, hostMM: HostMM, memslots: Memslots,
                hostCPUs: Int, tlbSize: Int = 16, tableBits: Int = 9, tableLevels: Int = 3) {
        self.engine = engine
        self.rcu = rcu
        self.hostMM = hostMM
        self.memslots = memslots
        mmuLock = SpinLock("spin_lock(&kvm->mmu_lock)", engine: engine)
        let cap = PageTable.capacity(forPageLimit: memslots.maxGfn, levels: tableLevels, bitsPerLevel: tableBits)
        gpaTable = PageTable(name: "GPA page table", levels: tableLevels, bitsPerLevel: tableBits, capacity: cap, engine: engine, rcu: rcu)
        tlbs = (0..<hostCPUs).map { HostTLB(cpu: $0, size: tlbSize) }
        oracle = MMUOracle(engine: engine, hostMM: hostMM, memslots: memslots)
        oracle.kvm = self
        hostMM.observer = oracle
    }

    deinit {
        hostMM.observer = nil                 // the oracle goes with this KVM
        notifierWords.free()
    }

    /// kvm_vm_ioctl_create_vcpu(). Call before any actor runs.
    @discardableResult
    public func createVCPU(cpu: Int) -> VCPUState {
        let v = VCPUState(id: vcpus.count, cpu: cpu)
        vcpus.append(v)
        return v
    }

    /// kvm_init_mmu_notifier(): only architectures with KVM_CAP_SYNC_MMU register.
    public func registerMMUNotifier() {
        hostMM.register(self)
        oracle.kvmSubscribed = true
    }

    /// Starts `mmu_notifier_seq` at `seq`, as for a VM whose host already ran that
    /// many invalidations. Call before any actor runs.
    public func setMMUNotifierSeq(_ seq: UInt64) { notifierWords.store(0, seq) }

    /// The aging oracle's clock (I4; not kernel state): a TLB fill records its
    /// value, each aging advances it. A fill only reads it, so vcpus filling their
    /// TLBs do not contend on it; an entry whose stamp is below a page's aging
    /// stamp was filled before that aging.
    public var tlbFillStamp: UInt64 { notifierWords.load(KVM.tlbFillStampWord) }
    /// Advances the aging clock; returns the new value (the aging's stamp).
    func advanceTLBFillStamp() -> UInt64 { notifierWords.add(KVM.tlbFillStampWord, 1) }

    public var mmuNotifierSeq: UInt64 { notifierWords.load(0) }
    public var mmuNotifierCount: UInt64 { notifierWords.load(1) }

    /// mmu_notifier_retry(kvm, mmu_seq) (include/linux/kvm_host.h); mmu_lock held.
    public func mmuNotifierRetry(_ mmuSeq: UInt64) -> Bool {
        if notifierWords.load(1) != 0 { return true }
        smp_rmb()
        return notifierWords.load(0) != mmuSeq
    }

    // MARK: - remote TLB flushes

    /// kvm_flush_remote_tlbs(): every vcpu gets KVM_REQ_TLB_FLUSH, and the caller
    /// waits until each vcpu that was in guest mode has left it (the IPI ack);
    /// a vcpu flushes its TLB before it enters the guest again.
    public func flushRemoteTLBs() {
        engine.event("kvm_flush_remote_tlbs()")
        makeAllCPUsRequest(VCPUState.reqTLBFlush)
    }

    /// kvm_make_all_cpus_request().
    public func makeAllCPUsRequest(_ req: UInt64) {
        kvmMakeAllCPUsRequest(vcpus, req, engine: engine)
    }

    // MARK: - MMU notifier callbacks (virt/kvm/kvm_main.c)

    /// kvm_mmu_notifier_invalidate_range_start().
    public func invalidateRangeStart(_ range: Range<Int>) {
        mmuLock.lock()
        notifierWords.add(1, 1)
        engine.event("kvm_mmu_notifier_invalidate_range_start: mmu_notifier_count = \(mmuNotifierCount)")
        let needFlush = arch.unmapHvaRange(range)
        if needFlush { flushRemoteTLBs() }
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_invalidate_range_end().
    public func invalidateRangeEnd(_ range: Range<Int>) {
        mmuLock.lock()
        notifierWords.add(0, 1)
        smp_wmb()
        let left = notifierWords.sub(1, 1)
        precondition(left < 1 << 62, "mmu_notifier_count underflow")
        engine.event("kvm_mmu_notifier_invalidate_range_end: mmu_notifier_seq = \(mmuNotifierSeq), count = \(left)")
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_change_pte().
    public func changePTE(hva: Int, pte: PTE) {
        guard handlesChangePTE else { return }
        mmuLock.lock()
        notifierWords.add(0, 1)
        arch.setSpteHva(hva, pte)
        mmuLock.unlock()
    }

    /// kvm_mmu_notifier_clear_flush_young().
    public func clearFlushYoung(_ range: Range<Int>) -> Bool {
        mmuLock.lock()
        let wasYoung = oracle.youngGfns(range)
        let young = arch.ageHva(range)
        if young { flushRemoteTLBs() }
        oracle.agedWithFlush(wasYoung)
        mmuLock.unlock()
        return young
    }

    /// kvm_mmu_notifier_clear_young().
    public func clearYoung(_ range: Range<Int>) -> Bool {
        mmuLock.lock()
        let young = arch.ageHva(range)
        mmuLock.unlock()
        return young
    }

    /// kvm_mmu_notifier_test_young().
    public func testYoung(hva: Int) -> Bool {
        mmuLock.lock()
        let young = arch.testAgeHva(hva)
        mmuLock.unlock()
        return young
    }
}
