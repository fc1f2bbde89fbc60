// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

extension TDPMMU {
    /// A world reset in place (Catalog's `ResettableWorld`): the MMU's state
    /// outside `AtomicWords` as `init` left it: no table handed out (the
    /// arena's allocator), kvm->arch.possible_nx_huge_pages empty, and every
    /// vcpu's arch state as `createVCPU` made it (`X86VCPU.resetForReuse`).
    /// Everything else (SPTEs, `struct kvm_mmu_page` fields, the roots list,
    /// the shadow MMU's pages, dirty bitmaps, the oracle's records, counters,
    /// locks) is in words the world's `WorldMemory` restores; the variant's
    /// code, the module parameters and the vcpu list are set at build and
    /// never change.
    public func resetForReuse() {
        arena.resetAllocator(firstTables: 0)
        possibleNXHugePages.removeAll(keepingCapacity: true)
        for v in vcpus { v.resetForReuse() }
    }
}
