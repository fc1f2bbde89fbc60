// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// struct kvm_vmid (arch/arm64/include/asm/kvm_host.h, v5.18+): one per stage-2
/// MMU (`kvm_s2_mmu.vmid`), an `atomic64_t id` = generation | index.
///
/// 0 means never allocated (the zeroed `struct kvm`): it matches no generation,
/// so the first `kvm_arm_vmid_update()` takes the slow path. Written by
/// `new_vmid()` under `cpu_vmid_lock`; read with no lock by the update's fast
/// path and by `kvm_get_vttbr()` (`VMIDAllocator.vttbrVMID(_:)`).
public final class KVMVMID: @unchecked Sendable {
    /// kvm_vmid->id: kernel memory (its accesses are access-level points).
    public let id: AtomicWords

    public init() { id = AtomicWords(count: 1, kernel: true) }

    deinit { id.free() }

    /// atomic64_read(&kvm_vmid->id).
    public var value: UInt64 { id.load(0) }
}
