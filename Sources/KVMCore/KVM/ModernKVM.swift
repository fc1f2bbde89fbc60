// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import RCU

/// `struct kvm` as x86 and arm64 have it today (v6.x, KVM_HAVE_MMU_RWLOCK and
/// CONFIG_KVM_GENERIC_MMU_NOTIFIER): `mmu_lock` is an rwlock (faults take it
/// for read, zaps for write), and the MMU notifier is the generic one of
/// kvm_main.c with gfn-ranged invalidation state (`KVMMMUNotifier`,
/// `MMUInvalidateState`), calling the arch's `KVMGFNRangeArch` hooks. The
/// sibling of `KVM` (the v4.x form MIPS and PPC run on); what both share is
/// `VirtualMachine`'s.
///
/// Locking rules:
/// - `mmuLock` (kvm->mmu_lock) is held for write by every change of the
///   invalidation state and by zaps that use plain stores; faults hold it for
///   read and change page tables only with atomics.
/// - `mmu_invalidate_seq` is read without the lock by a faulting vcpu before it
///   looks up a pfn (then smp_rmb()) and checked again with the lock held
///   (`MMUInvalidateState.retryGFN`).
/// - Lock-free walkers of the arch's tables run inside an RCU read section of `rcu`.
public final class ModernKVM: VirtualMachine, @unchecked Sendable {
    public let engine: SimEngine
    public let rcu: any RCUDomain
    /// kvm->srcu: the memslots' read side. A vcpu holds it while it runs in
    /// KVM (not in guest mode); a memslot update publishes the new memslots,
    /// then synchronize_srcu() waits for every vcpu that may still use the old
    /// ones (in parallel mode: liburcu's one domain, which waits for every
    /// reader: conservative).
    public let srcu: any RCUDomain
    public let hostMM: HostMM
    public let memslots: Memslots
    /// kvm->mmu_lock: the kernel's queued rwlock.
    public let mmuLock: RWLock
    /// The generic MMU notifier and the invalidation state it keeps.
    public let notifier: KVMMMUNotifier
    public private(set) var vcpus: [VCPUState] = []
    /// The oracle watching this VM's secondary MMU, if the architecture attached one.
    public private(set) var oracle: MMUOracle?

    public init(engine: SimEngine, rcu: any RCUDomain, hostMM: HostMM, memslots: Memslots) {
        self.engine = engine
        self.rcu = rcu
        srcu = makeRCU(for: engine)
        self.hostMM = hostMM
        self.memslots = memslots
        mmuLock = RWLock(read: "read_lock(&kvm->mmu_lock)", write: "write_lock(&kvm->mmu_lock)", lockName: "kvm->mmu_lock",
                         waitLockPoint: "spin_lock(&kvm->mmu_lock.wait_lock)", engine: engine)
        notifier = KVMMMUNotifier(engine: engine, mmuLock: mmuLock, memslots: memslots)
    }

    deinit {
        if oracle != nil { hostMM.observer = nil }   // the oracle goes with this VM
    }

    /// The invalidation state (`kvm->mmu_invalidate_*`).
    public var invalidate: MMUInvalidateState { notifier.invalidate }

    /// kvm_vm_ioctl_create_vcpu(). Call before any actor runs.
    @discardableResult
    public func createVCPU(cpu: Int) -> VCPUState {
        let v = VCPUState(id: vcpus.count, cpu: cpu)
        vcpus.append(v)
        return v
    }

    /// Attaches the arch's hooks (`kvm_unmap_gfn_range()` and the rest). Before
    /// any actor runs; the arch holds this VM unowned.
    public func setArch(_ arch: any KVMGFNRangeArch) { notifier.arch = arch }

    /// Attaches the oracle of the arch's secondary MMU: it watches the host mm's
    /// events and the notifier's aging too. Before any actor runs.
    public func attach(oracle: MMUOracle) {
        self.oracle = oracle
        hostMM.observer = oracle
        notifier.oracle = oracle
    }

    /// kvm_init_mmu_notifier(): mmu_notifier_register() of the VM's notifier.
    public func registerMMUNotifier() {
        hostMM.register(notifier)
        oracle?.kvmSubscribed = true
    }
}
