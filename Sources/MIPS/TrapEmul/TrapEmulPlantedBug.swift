// SPDX-License-Identifier: GPL-2.0-only

/// Test-only bugs of class 2 of issue 20 ("modelled state nobody exercises"),
/// planted in a vcpu through `TrapEmulVCPU.plantedBug` by a test scenario
/// (Tests/MIPSTests/PlantedBugTests.swift) to show the workloads reach the state
/// they break. No registered scenario sets one: `nil` is the kernel's code.
public enum TrapEmulPlantedBug: String, Sendable, CaseIterable {
    /// The guest's `mtc0 EntryHi` emulation regenerates the guest kernel mm's context on
    /// this CPU but does not zero the other CPUs' (v4.10 `guest_kernel_asid[i]`, v4.11
    /// `cpu_context(i, kern_mm)`): only guest kernel-mode accesses on another CPU see it.
    case entryHiKeepsOtherKernelContexts = "entryhi-keeps-other-kernel-contexts"
    /// `kvm_trap_emul_check_requests()` zeroes only the guest user mm's contexts on
    /// KVM_REQ_TLB_FLUSH: the kernel mm's host TLB entries survive a GPA change.
    case tlbFlushRequestZeroesUserContextsOnly = "tlb-flush-request-zeroes-user-contexts-only"
    /// `kvm_mips_flush_gva_pt()` flushes useg up to 0x3fffefff, one page short of the
    /// KMF_USER end: only the last useg page (0x3ffff000) keeps a stale GVA PTE.
    case usegFlushOnePageShort = "useg-flush-one-page-short"
}
