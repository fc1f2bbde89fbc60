// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The three forms of the pre-5.18 VMID allocator of virt/kvm/arm/arm.c
/// (update_vttbr(), need_new_vmid_gen()), one race and its two fixes.
public enum LegacyVMIDForm: String, Sendable, CaseIterable {
    /// v4.15-v4.18: kvm_vmid_lock a spinlock; update_vttbr() writes
    /// kvm->arch.vmid_gen before kvm->arch.vttbr, so a lock-free
    /// need_new_vmid_gen() can pass while vttbr still holds the old VMID.
    case genBeforeVTTBR
    /// f0cf47d939d0 (v4.19) "Close VMID generation race": kvm_vmid_lock an
    /// rwlock, update_vttbr()'s first check under read_lock; the run loop's
    /// final need_new_vmid_gen() still takes no lock.
    case readLockedCheck
    /// The v5.0 fix, "Fix VMID alloc race by reverting to lock-less": a
    /// spinlock again; vmid and vttbr, then smp_wmb(), then
    /// WRITE_ONCE(vmid_gen); smp_rmb() in need_new_vmid_gen().
    case vttbrBeforeGen
}

/// A VM's VMID before v5.18: kvm->arch.vmid_gen, kvm->arch.vmid and
/// kvm->arch.vttbr (struct kvm_vmid's vmid_gen and vmid from v5.1). Written by
/// update_vttbr() under kvm_vmid_lock, read with no lock by
/// need_new_vmid_gen() and by the hyp at guest entry.
public final class LegacyKVMVMID: @unchecked Sendable {
    /// kvm->arch.vmid_gen: 0 at kvm_arch_init_vm() ("Mark the initial VMID
    /// generation invalid"); the global generation starts at 1.
    public let vmidGen: AtomicWords
    /// kvm->arch.vmid.
    public let vmid: AtomicWords
    /// kvm->arch.vttbr, reduced to its VMID field (the pgd bits never change).
    public let vttbr: AtomicWords

    public init() {
        vmidGen = AtomicWords(count: 1, kernel: true)
        vmid = AtomicWords(count: 1, kernel: true)
        vttbr = AtomicWords(count: 1, kernel: true)
    }

    deinit { vmidGen.free(); vmid.free(); vttbr.free() }
}

/// The pre-5.18 VMID allocator (virt/kvm/arm/arm.c, v4.15-v5.17, in the
/// three forms of `LegacyVMIDForm`): a global generation `kvm_vmid_gen`
/// (starts at 1) and a next VMID `kvm_next_vmid` (a zeroed static: the first
/// allocation ever finds it 0 and rolls over to generation 2). When
/// kvm_next_vmid wraps to 0, the next allocation bumps the generation, kicks
/// every CPU out of its guest (force_vm_exit(cpu_all_mask)), flushes all stage-2
/// TLBs (__kvm_flush_vm_context) and hands out VMIDs from 1 again; every VM of
/// an older generation takes a new one at its next entry.
///
/// Texts read: update_vttbr() of v4.15-v4.18 (linux-yocto 4.12) and v4.19
/// (a v4.19 tree); the v5.0 order from the fix's message ("vttbr is updated
/// before another CPU can observe the updated VMID generation") and the
/// v5.1-v5.17 update_vmid(), which keeps it.
///
/// Locking: kvm_vmid_gen is an atomic; kvm_next_vmid and the rollover under
/// kvm_vmid_lock (a spinlock; an rwlock taken for write in `readLockedCheck`);
/// a VM's vmid_gen, vmid and vttbr are written under it and read without it.
/// update_vttbr() runs preemptible with IRQs on; the run loop's final
/// need_new_vmid_gen() runs with IRQs off, which is what makes
/// force_vm_exit() wait for a CPU past that check until it leaves the guest.
public final class LegacyVMIDAllocator: @unchecked Sendable {
    public let engine: SimEngine
    public let form: LegacyVMIDForm
    /// kvm_vmid_bits (kvm_get_vmid_bits()).
    public let vmidBits: Int
    /// (1 << kvm_vmid_bits) - 1.
    public let vmidMask: UInt64
    /// force_vm_exit(cpu_all_mask): IPI every CPU and wait until each has
    /// taken it (left the guest, or has IRQs on). Called with kvm_vmid_lock
    /// held: a CPU spinning on kvm_vmid_lock does so with IRQs on and acks.
    private let forceVMExit: @Sendable () -> Void
    /// kvm_call_hyp(__kvm_flush_vm_context): TLBI ALLE1IS, kvm_vmid_lock held.
    private let flushVMContext: @Sendable () -> Void

    /// kvm_vmid_lock for `genBeforeVTTBR` and `vttbrBeforeGen`.
    private let spinLock: SpinLock?
    /// kvm_vmid_lock for `readLockedCheck`.
    private let rwLock: RWLock?
    /// kvm_vmid_gen (atomic64_t).
    private let vmidGeneration: AtomicWords
    /// kvm_next_vmid (u32, under kvm_vmid_lock), then the model's count of rollovers.
    private let locked: AtomicWords

    public static let markRollover = CoverageMark("arm64: legacy VMID rollover (force_vm_exit + __kvm_flush_vm_context)")
    public static let markRecheck = CoverageMark("arm64: update_vttbr re-check under kvm_vmid_lock finds the VMID allocated")

    public init(engine: SimEngine, vmidBits: Int, form: LegacyVMIDForm,
                forceVMExit: @escaping @Sendable () -> Void, flushVMContext: @escaping @Sendable () -> Void) {
        precondition((1...16).contains(vmidBits))
        self.engine = engine
        self.form = form
        self.vmidBits = vmidBits
        vmidMask = (UInt64(1) << vmidBits) - 1
        self.forceVMExit = forceVMExit
        self.flushVMContext = flushVMContext
        if form == .readLockedCheck {
            spinLock = nil
            rwLock = RWLock(read: "read_lock(&kvm_vmid_lock)", write: "write_lock(&kvm_vmid_lock)", lockName: "kvm_vmid_lock",
                            waitLockPoint: "spin_lock(&kvm_vmid_lock.wait_lock)", engine: engine)
        } else {
            spinLock = SpinLock("spin_lock(&kvm_vmid_lock)", engine: engine)
            rwLock = nil
        }
        vmidGeneration = AtomicWords(count: 1, initial: 1, kernel: true)   // ATOMIC64_INIT(1)
        locked = AtomicWords(count: 2)                                       // static u32 kvm_next_vmid; (0)
    }

    deinit { vmidGeneration.free(); locked.free() }

    /// need_new_vmid_gen(): the VM's VMID is of an older generation. No lock.
    /// v4.15-v4.19: `kvm->arch.vmid_gen != atomic64_read(&kvm_vmid_gen)`;
    /// v5.0: the generation, smp_rmb(), then READ_ONCE(vmid_gen).
    public func needNewVMIDGen(_ vm: LegacyKVMVMID) -> Bool {
        switch form {
        case .genBeforeVTTBR, .readLockedCheck:
            let vmGen = vm.vmidGen.load(0)
            engine.point("need_new_vmid_gen: kvm->arch.vmid_gen read")
            return vmGen != vmidGeneration.load(0)
        case .vttbrBeforeGen:
            let current = vmidGeneration.load(0)
            engine.point("need_new_vmid_gen: kvm_vmid_gen read")
            smp_rmb()   // Orders read of kvm_vmid_gen and kvm->arch.vmid
            return vm.vmidGen.load(0) != current
        }
    }

    /// update_vttbr() (v4.15-v4.19) / update_vmid() (v5.0 form): the lock-free
    /// check (under read_lock in v4.19), kvm_vmid_lock, the re-check, the
    /// rollover when kvm_next_vmid is 0, then the publication in the form's
    /// order. Preemptible, IRQs on.
    public func updateVTTBR(_ vm: LegacyKVMVMID) {
        if form == .readLockedCheck {
            rwLock!.readLock()
            let newGen = needNewVMIDGen(vm)
            rwLock!.readUnlock()
            if !newGen { return }
        } else if !needNewVMIDGen(vm) {
            return
        }

        lockVMIDLock()
        // Re-check: another vcpu may already have allocated a valid vmid for
        // this vm, and this vcpu should use the same one.
        if !needNewVMIDGen(vm) {
            engine.cover(Self.markRecheck)
            unlockVMIDLock()
            return
        }

        // First user of a new VMID generation?
        if locked.load(0) == 0 {
            vmidGeneration.add(0, 1)                  // atomic64_inc(&kvm_vmid_gen)
            locked.store(0, 1)                        // kvm_next_vmid = 1
            locked.add(1, 1)
            engine.cover(Self.markRollover)
            engine.event("update_vttbr: rollover to VMID generation \(vmidGeneration.load(0))")
            // Other CPUs may see the new generation before the IPIs.
            engine.point("update_vttbr: kvm_vmid_gen bumped, before force_vm_exit()")
            assertVMIDLockHeld("force_vm_exit() in update_vttbr()")
            // On SMP we know no other CPUs can use this CPU's or each other's
            // VMID after force_vm_exit returns since the kvm_vmid_lock blocks
            // them from reentry to the guest.
            forceVMExit()
            // Now broadcast TLB + ICACHE invalidation over the inner shareable domain.
            flushVMContext()
        }

        let next = locked.load(0)
        switch form {
        case .genBeforeVTTBR, .readLockedCheck:
            vm.vmidGen.store(0, vmidGeneration.load(0))                          // (W1)
            // A lock-free need_new_vmid_gen() now passes while vttbr is stale.
            engine.point("update_vttbr: kvm->arch.vmid_gen written, kvm->arch.vttbr not yet")
            vm.vmid.store(0, next)
            advanceNextVMID(next)
            vm.vttbr.store(0, next & vmidMask)                                   // (W2)
        case .vttbrBeforeGen:
            vm.vmid.store(0, next)
            advanceNextVMID(next)
            vm.vttbr.store(0, next & vmidMask)
            // Checks still fail here: vmid_gen is the old one until the last write.
            engine.point("update_vmid: vmid and vttbr written, vmid_gen not yet")
            smp_wmb()
            vm.vmidGen.store(0, vmidGeneration.load(0))                          // WRITE_ONCE(vmid_gen)
        }
        engine.event("update_vttbr: VMID \(next) in generation \(vmidGeneration.load(0))")
        unlockVMIDLock()
    }

    /// What the hyp programs into VTTBR_EL2.VMID at guest entry:
    /// kvm->arch.vttbr before v5.0; for the v5.0 form vmid->vmid (v5.1+ builds
    /// VTTBR from it at entry; v5.0 still read kvm->arch.vttbr, written before
    /// the same smp_wmb(), so the value is the same).
    public func entryVMID(_ vm: LegacyKVMVMID) -> Int {
        switch form {
        case .genBeforeVTTBR, .readLockedCheck: return Int(vm.vttbr.load(0))
        case .vttbrBeforeGen: return Int(vm.vmid.load(0) & vmidMask)
        }
    }

    // MARK: - kvm_vmid_lock

    private func lockVMIDLock() {
        if let rwLock { rwLock.writeLock() } else { spinLock!.lock() }
    }

    private func unlockVMIDLock() {
        if let rwLock { rwLock.writeUnlock() } else { spinLock!.unlock() }
    }

    private func assertVMIDLockHeld(_ function: StaticString) {
        if let rwLock { rwLock.assertHeldWrite(function) } else { spinLock!.assertHeld(function) }
    }

    /// kvm_next_vmid++; kvm_next_vmid &= (1 << kvm_vmid_bits) - 1. Lock held.
    private func advanceNextVMID(_ next: UInt64) {
        assertVMIDLockHeld("update_vttbr(): kvm_next_vmid++")
        locked.store(0, (next + 1) & vmidMask)
    }

    // MARK: - reads for oracles and tests

    /// kvm_vmid_gen, as an oracle sees it.
    public var generation: UInt64 { vmidGeneration.peek(0) }
    /// kvm_next_vmid, as an oracle sees it.
    public var nextVMID: UInt64 { locked.peek(0) }
    /// How many rollovers there were (the first allocation is one).
    public var rollovers: UInt64 { locked.peek(1) }
    /// Whether some CPU holds kvm_vmid_lock (for write, in `readLockedCheck`).
    public var isVMIDLockHeld: Bool {
        if let rwLock { return rwLock.isLocked }
        return withoutAccessPoints { spinLock!.isLocked }
    }
}
