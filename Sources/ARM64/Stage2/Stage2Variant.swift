// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The forms of arm64 stage-2 code the scenarios run: `upstream` (mmu.c and
/// pgtable.c of v6.6 with the later TLBI fixes, the VMID allocator of v6.14 on
/// VHE: every fix below) and, per historical race, the code just before its
/// fix and the fix. A race's variants are `upstream` with only that fix's
/// lines in their older form (`Stage2Code`), so each pair differs exactly where
/// the fix did; docs/mechanisms/arm64-stage2.md says what else the kernel of
/// that time had that the model does not.
public enum Stage2Variant: String, ModelVariant {
    /// Every fix below.
    case upstream
    /// R1: user_mem_abort() snapshots mmu_invalidate_seq after
    /// mmap_read_unlock(), so a VMA change in between goes unseen (94f8e6418d39 .. 13ec9308a857).
    case vmaSeqPreFix = "vma-seq-pre-fix"
    /// R1 fixed: the snapshot is taken before mmap_read_unlock().
    case vmaSeqFixed = "vma-seq-fixed"
    /// R2: the walker descends through its pre-callback snapshot after a
    /// pre-order callback replaced a table with a block and freed the table
    /// (5c359cca1faf .. a9f0e3d5a089).
    case walkerReloadPreFix = "walker-reload-pre-fix"
    /// R2 fixed: the entry is reloaded after the pre-order callback too.
    case walkerReloadFixed = "walker-reload-fixed"
    /// R3: VHE programs VTTBR at vcpu_load with whatever VMID the VM has, and
    /// reloads it only if this vcpu's kvm_arm_vmid_update() allocated one
    /// (934bf871f011 .. fa808ed4e199, v6.7-v6.13).
    case vmidLoadPreFix = "vmid-load-pre-fix"
    /// R3 fixed: the VMID is updated in kvm_arch_vcpu_load() before VTTBR is written.
    case vmidLoadFixed = "vmid-load-fixed"
    /// R4: the pre-5.18 allocator publishes the VM's vmid_gen before its
    /// vttbr (v4.15-v4.18, before f0cf47d939d0).
    case vmidGenPreFix = "vmid-gen-pre-fix"
    /// R4, first fix (f0cf47d939d0, v4.19): kvm_vmid_lock an rwlock, the
    /// first check under read_lock; the run loop's final check still unlocked.
    case vmidGenFirstFix = "vmid-gen-first-fix"
    /// R4 fixed (v5.0, "Fix VMID alloc race by reverting to lock-less"):
    /// vmid written, smp_wmb(), then vmid_gen; smp_rmb() in need_new_vmid_gen().
    case vmidGenFixed = "vmid-gen-fixed"

    public static let r1Fix = KernelCommit("13ec9308a857", "KVM: arm64: Retry fault if vma_lookup() results become invalid", release: "v6.3")
    public static let r2Fix = KernelCommit("a9f0e3d5a089", "KVM: arm64: Reload PTE after invoking walker callback on preorder traversal", release: "v6.4")
    public static let r3Fix = KernelCommit("fa808ed4e199", "KVM: arm64: Ensure a VMID is allocated before programming VTTBR_EL2", release: "v6.14")
    public static let r4FirstFix = KernelCommit("f0cf47d939d0", "KVM: arm/arm64: Close VMID generation race", release: "v4.19")
    /// Named by its release: the commit's hash could not be checked offline
    /// (the "KVM/arm updates for 4.21" pull lists its subject).
    public static let r4Fix = KernelCommit.release("v5.0", "\"KVM: arm/arm64: Fix VMID alloc race by reverting to lock-less\" (Christoffer Dall, KVM/arm updates for 4.21; Fixes: f0cf47d939d0)")

    public var commit: KernelCommit? {
        switch self {
        case .upstream: return .release("v6.14", "mmu.c and pgtable.c as of v6.6 with the later TLBI fixes (4c36a156, f62d4c3eb687), vmid.c and arm.c with fa808ed4e199: every fix modelled")
        case .vmaSeqPreFix: return Self.r1Fix.parent
        case .vmaSeqFixed: return Self.r1Fix
        case .walkerReloadPreFix: return Self.r2Fix.parent
        case .walkerReloadFixed: return Self.r2Fix
        case .vmidLoadPreFix: return Self.r3Fix.parent
        case .vmidLoadFixed: return Self.r3Fix
        case .vmidGenPreFix: return Self.r4FirstFix.parent
        case .vmidGenFirstFix: return Self.r4FirstFix
        case .vmidGenFixed: return Self.r4Fix
        }
    }
}

/// Where a variant's code differs from upstream's: one field per fix, each
/// with the kernel's older form as a case. Model code branches on these, only
/// at the lines the fix changed.
public struct Stage2Code: Sendable, Equatable {
    /// Where user_mem_abort() reads mmu_invalidate_seq (R1, 13ec9308a857).
    public enum MMUSeqSnapshot: Sendable { case afterMmapUnlock, beforeMmapUnlock }
    /// How VMIDs are allocated and VTTBR programmed.
    public enum VMIDScheme: Sendable, Equatable {
        /// vmid.c (v5.18+) with VHE's eager VTTBR at vcpu_load (v6.7+):
        /// kvm_arm_vmid_update() in the run loop, VTTBR reloaded only if it
        /// allocated (R3 pre-fix, v6.7-v6.13), or in vcpu_load before the
        /// VTTBR write (fa808ed4e199).
        case allocator(updateInVCPULoad: Bool)
        /// update_vttbr() of virt/kvm/arm/arm.c (v4.15-v5.17), in the form of
        /// the legacy allocator (R4); VTTBR written at every guest entry.
        case legacy(LegacyVMIDForm)
    }

    public var mmuSeqSnapshot = MMUSeqSnapshot.beforeMmapUnlock
    /// Whether __kvm_pgtable_visit() reloads the entry after a pre-order callback (R2).
    public var reloadAfterTablePre = true
    public var vmid = VMIDScheme.allocator(updateInVCPULoad: true)

    public init(_ v: Stage2Variant) {
        switch v {
        case .upstream, .vmaSeqFixed, .walkerReloadFixed, .vmidLoadFixed: break
        case .vmaSeqPreFix: mmuSeqSnapshot = .afterMmapUnlock
        case .walkerReloadPreFix: reloadAfterTablePre = false
        case .vmidLoadPreFix: vmid = .allocator(updateInVCPULoad: false)
        case .vmidGenPreFix: vmid = .legacy(.genBeforeVTTBR)
        case .vmidGenFirstFix: vmid = .legacy(.readLockedCheck)
        case .vmidGenFixed: vmid = .legacy(.vttbrBeforeGen)
        }
    }
}
