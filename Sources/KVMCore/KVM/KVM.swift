// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU

/// `struct kvm`: one VM, its memslots, `mmu_lock`, its vcpus, and the MMU
/// notifier state with the generic callbacks of virt/kvm/kvm_main.c (v4.9-v4.12
/// form: `mmu_notifier_seq` / `mmu_notifier_count`). The architecture's page
/// tables, TLBs and oracles belong to its arch MMU (`arch`), which the generic
/// callbacks call.
///
/// Facets: `KVM+MMUNotifier.swift` (the notifier callbacks); what every VM
/// shares (gfn_to_pfn_prot, kvm_release_pfn_clean, kvm_flush_remote_tlbs) is
/// `VirtualMachine`'s.
///
/// Locking rules:
/// - `mmuLock` (kvm->mmu_lock, a spinlock) serialises every writer of the arch's
///   tables and every change of `mmu_notifier_seq` / `mmu_notifier_count`; the
///   arch hooks assert it (`mmuLock.assertHeld`).
/// - `mmu_notifier_seq` is read without the lock by a faulting vcpu before it
///   looks up a pfn (then smp_rmb()), and compared again under the lock by
///   `mmuNotifierRetry`.
/// - Arch-table readers that do not take `mmu_lock` walk inside an RCU read
///   section of `rcu`.
public final class KVM: VirtualMachine, MMUNotifierSubscriber, @unchecked Sendable {
    public let engine: SimEngine
    public let rcu: any RCUDomain
    public let hostMM: HostMM
    public let memslots: Memslots
    public let mmuLock: SpinLock
    public private(set) var vcpus: [VCPUState] = []
    /// The architecture's MMU (set by it, before any actor runs). It holds the
    /// KVM unowned; the world that builds both clears this at teardown.
    public var arch: KVMArchMMU!
    public let notifier = MMUNotifierCounters()
    /// The oracle watching this VM's secondary MMU, if the architecture attached one.
    public private(set) var oracle: MMUOracle?
    /// Whether KVM implements `.change_pte()` (true in every kernel that had it).
    public var handlesChangePTE = true

    public init(engine: SimEngine, rcu: any RCUDomain, hostMM: HostMM, memslots: Memslots) {
        self.engine = engine
        self.rcu = rcu
        self.hostMM = hostMM
        self.memslots = memslots
        mmuLock = SpinLock("spin_lock(&kvm->mmu_lock)", engine: engine)
    }

    deinit {
        if oracle != nil { hostMM.observer = nil }   // the oracle goes with this KVM
    }

    /// kvm_vm_ioctl_create_vcpu(). Call before any actor runs.
    @discardableResult
    public func createVCPU(cpu: Int) -> VCPUState {
        let v = VCPUState(id: vcpus.count, cpu: cpu)
        vcpus.append(v)
        return v
    }

    /// Attaches the oracle of the arch's secondary MMU: it watches the host mm's
    /// events too (`HostMMObserver`). Before any actor runs.
    public func attach(oracle: MMUOracle) {
        self.oracle = oracle
        hostMM.observer = oracle
    }

    /// kvm_init_mmu_notifier(): only architectures with KVM_CAP_SYNC_MMU register.
    public func registerMMUNotifier() {
        hostMM.register(self)
        oracle?.kvmSubscribed = true
    }

    /// Starts `mmu_notifier_seq` at `seq`. Call before any actor runs.
    public func setMMUNotifierSeq(_ seq: UInt64) { notifier.setSeq(seq) }

    public var mmuNotifierSeq: UInt64 { notifier.seq }
    public var mmuNotifierCount: UInt64 { notifier.count }

    /// mmu_notifier_retry(kvm, mmu_seq) (include/linux/kvm_host.h): called
    /// with `kvm->mmu_lock` held, except by PPC Book3S HV, which calls it under
    /// a per-page rmap lock "for scalability" (the v3.8 comment), so it asserts
    /// no lock; the smp_rmb() pairs with the smp_wmb() of invalidate_range_end.
    public func mmuNotifierRetry(_ mmuSeq: UInt64) -> Bool { notifier.retry(mmuSeq) }

    /// kvm_set_pfn_dirty() (virt/kvm/kvm_main.c, v4.11):
    /// `if (!kvm_is_reserved_pfn(pfn)) { ... if (!PageReserved(page)) SetPageDirty(page); }`.
    /// No lock (MIPS calls it under `mmu_lock`). Only worlds that keep page
    /// flags (`HostPages.pageFlags`) record it; the oracle checks the page is
    /// still allocated (page-flags-after-free).
    public func kvmSetPfnDirty(_ pfn: Int) {
        let pages = hostMM.pages
        guard pages.pageFlags, !pages.isZero(pfn) else { return }       // the zero page is reserved
        oracle?.settingPageFlags(pfn: pfn, who: "kvm_set_pfn_dirty()")
        pages.setDirty(pfn)
    }

    /// kvm_set_pfn_accessed() (virt/kvm/kvm_main.c, v4.11):
    /// `if (!kvm_is_reserved_pfn(pfn)) mark_page_accessed(pfn_to_page(pfn));`.
    /// No lock; MIPS calls it after dropping `mmu_lock` (and, in the slow path,
    /// after kvm_release_pfn_clean()). The oracle checks the page is still
    /// allocated (page-flags-after-free).
    public func kvmSetPfnAccessed(_ pfn: Int) {
        let pages = hostMM.pages
        guard pages.pageFlags, !pages.isZero(pfn) else { return }
        oracle?.settingPageFlags(pfn: pfn, who: "kvm_set_pfn_accessed()")
        pages.markAccessed(pfn)
    }
}
