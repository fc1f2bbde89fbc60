// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `kvm->arch` of a Book3S HV VM on a POWER7 host using MMU notifiers, with the
/// HPT hcalls of arch/powerpc/kvm/book3s_hv_rm_mmu.c, the MMU-notifier hooks and
/// the HPTE fault of arch/powerpc/kvm/book3s_64_mmu_hv.c, and the TLB flush of
/// kvmppc_hv_entry (book3s_hv_rmhandlers.S), in v3.7 (pre-fix) and v3.8 (seed
/// 002) form.
///
/// Locking rules (as in the kernel):
/// - an HPTE changes only under its HVLOCK bit; a hardware walk reads it unlocked;
/// - the rmap chain of a gfn changes only under its rmap lock; nobody spins on an
///   HPTE lock while holding an rmap lock;
/// - `tlbie_lock` serialises global invalidations (`tlbie` ... `tlbsync`);
/// - `need_tlb_flush` bits are set by a CPU that did a local invalidation and
///   test-and-cleared (atomically) by the primary thread of a core entering the
///   guest, before that core's flush;
/// - the MMU-notifier callbacks run under `kvm->mmu_lock`; the HPTE fault and
///   H_ENTER check `mmu_notifier_retry()` under the gfn's rmap lock.
/// Functions that require an HPTE or rmap lock assert it (lockdep).
///
/// Facets: `+Invalidation` (global_invalidates(), tlbie/tlbiel), `+HCalls`
/// (H_ENTER, H_REMOVE, H_BULK_REMOVE, H_PROTECT), `+Fault` (guest accesses and
/// kvmppc_book3s_hv_page_fault()), `+Notifier` (the MMU-notifier hooks),
/// `+Entry` (kvmppc_run_core(), the guest-entry TLB flush, the HPT reset).
/// It keeps no GPA page table: `PPCTLBOracle` checks the HPT and the core TLBs.
public final class Book3SHV: KVMArchMMU, @unchecked Sendable {
    /// The oracles watching a Book3S HV world.
    public static let oracles: [Oracle] = PPCTLBOracle.oracles
    /// Coverage marks.
    public static let markTLBIE = CoverageMark("ppc: tlbie (global)")
    public static let markTLBIEL = CoverageMark("ppc: tlbiel (local)")
    public static let markNeedFlushConsumed = CoverageMark("ppc: need_tlb_flush bit consumed at entry")
    public static let markLastCPUFlush = CoverageMark("ppc: last_cpu/last_vcpu entry flush")
    public static let markEnterRetry = CoverageMark("ppc: H_ENTER written absent (mmu_notifier_retry)")
    public static let markFault = CoverageMark("ppc: HPTE fault validates an HPTE")
    public static let markFaultRetry = CoverageMark("ppc: HPTE fault mmu_notifier_retry taken")
    public static let markUnmap = CoverageMark("ppc: kvm_unmap_rmapp invalidates an HPTE")
    public static let markProtectLocal = CoverageMark("ppc: H_PROTECT with H_LOCAL")
    public let kvm: KVM
    public let engine: SimEngine
    public let variant: TLBInvalidationVariant
    public let host: PPCHost
    public let hpt: HPT
    let rmap: RMap
    public let oracle: PPCTLBOracle
    public let lpid = 1
    /// kvm->arch.need_tlb_flush (a cpumask; host CPUs <= 64 here).
    let needTLBFlush = AtomicWords(count: 1, kernel: true)
    /// kvm->arch.last_vcpu[NR_CPUS] (pre-fix).
    let lastVCPU: AtomicWords
    /// kvm->arch.tlbie_lock.
    let tlbieLock: SpinLock
    /// kvm->arch.online_vcores (seed 002) and kvm->online_vcpus.
    public private(set) var onlineVcores = 0
    public private(set) var onlineVCPUs = 0
    /// kvm->arch.using_mmu_notifiers: true on POWER7.
    public let usingMMUNotifiers = true
    public private(set) var vcores: [Vcore] = []
    public private(set) var vcpus: [PPCVCPU] = []
    /// kvm->arch.vcpus_running, kvm->arch.rma_setup_done.
    enum VMField: Int, CaseIterable { case vcpusRunning, rmaSetupDone }
    let vmWords = AtomicRecords<VMField>(count: 1, kernel: true)
    let counters = AtomicWords(count: PPCCounter.allCases.count)

    public init(kvm: KVM, variant: TLBInvalidationVariant, host: PPCHost, hptGroups: Int) {
        self.kvm = kvm
        engine = kvm.engine
        self.variant = variant
        self.host = host
        hpt = HPT(groups: hptGroups, engine: kvm.engine)
        rmap = RMap(gfns: kvm.memslots.maxGfn, npte: hpt.npte, engine: kvm.engine)
        oracle = PPCTLBOracle(engine: kvm.engine, hostMM: kvm.hostMM, memslots: kvm.memslots, npte: hpt.npte)
        lastVCPU = AtomicWords(count: host.cpus + 4, kernel: true)
        tlbieLock = SpinLock("try_lock_tlbie(&kvm->arch.tlbie_lock)", engine: kvm.engine)
        precondition(host.cpus <= 64, "need_tlb_flush is one word in the model")
        kvm.arch = self
        kvm.registerMMUNotifier()
        vmWords.store(0, .rmaSetupDone, 1)
        // kvmppc_alloc_hpt() (seed 002): any core may hold stale entries of a
        // previous VM with this LPID.
        if variant.hasGlobalInvalidates { needTLBFlush.store(0, allCPUs) }
    }

    deinit { needTLBFlush.free(); lastVCPU.free(); vmWords.free(); counters.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): the VM's state
    /// outside `AtomicWords` as the build left it: every core's TLB empty
    /// (`CoreTLB.resetForReuse`), every vcpu's `last_cpu` at -1
    /// (`PPCVCPU.resetForReuse`) and no exempt invalidation in the oracle
    /// (`PPCTLBOracle.resetForReuse`). The HPT, the rmap chains,
    /// `need_tlb_flush`, `last_vcpu[]`, the vcores' placement, entry
    /// generations and acks, the cores' owners, the oracle's per-slot records,
    /// locks and counters are words the world's `WorldMemory` restores; the
    /// variant's code and the vcore and vcpu lists (and their online counts)
    /// are set at build and never change.
    public func resetForReuse() {
        for tlb in host.tlbs { tlb.resetForReuse() }
        for v in vcpus { v.resetForReuse() }
        oracle.resetForReuse()
    }

    var allCPUs: UInt64 { host.cpus == 64 ? ~0 : (1 << UInt64(host.cpus)) - 1 }
    public func counter(_ c: PPCCounter) -> Int { Int(counters.load(c.rawValue)) }
    /// Every counter with its value.
    public var counterValues: [(ProtocolCounter, Int)] { PPCCounter.allCases.map { ($0.counter, counter($0)) } }
    func count(_ c: PPCCounter) { counters.add(c.rawValue, 1) }
    public var needTLBFlushMask: UInt64 { needTLBFlush.load(0) }

    /// kvmppc_core_vcpu_create(): vcpu `id` joins vcore `id / vcpusPerVcore`
    /// (threads_per_core), creating the vcore (and counting it online) if needed.
    /// Call before any actor runs.
    @discardableResult
    public func createVCPU(vcpusPerVcore: Int) -> PPCVCPU {
        let id = vcpus.count
        let core = id / vcpusPerVcore
        if core == vcores.count {
            vcores.append(Vcore(id: core))
            onlineVcores += 1
        }
        let v = PPCVCPU(id: id, vcore: vcores[core], ptid: id % vcpusPerVcore)
        vcores[core].vcpus.append(v)
        vcpus.append(v)
        onlineVCPUs += 1
        return v
    }

    /// Allocates each vcore's ack words once every vcpu exists.
    public func finishCreation() {
        for vc in vcores { vc.acks = AtomicWords(count: vc.vcpus.count, kernel: true) }
    }

    func core(of vcpu: PPCVCPU) -> Int { (vcpu.vcore.pcpu ?? 0) / host.threadsPerCore }
}
