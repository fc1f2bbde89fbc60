// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// `struct kvm_mmu_memory_cache`: tables a vcpu allocates before taking `mmu_lock`,
/// so that the walk under the spinlock never sleeps.
public final class MMUMemoryCache: @unchecked Sendable {
    let table: PageTable
    public private(set) var objects: [Int] = []
    public init(table: PageTable) {
        self.table = table
        objects.reserveCapacity(8)                          // KVM_NR_MEM_OBJS-sized: filled without regrowth
    }

    /// mmu_topup_memory_cache(cache, min, max): false is -ENOMEM.
    public func topup(min: Int, max: Int) -> Bool {
        if objects.count >= min { return true }
        while objects.count < max {
            guard let t = table.allocTable() else { return objects.count >= min }
            objects.append(t)
        }
        return true
    }

    /// mmu_memory_cache_alloc().
    func alloc() -> Int? { objects.popLast() }

    /// mmu_free_memory_cache().
    public func freeAll() { while let t = objects.popLast() { table.freeUnlinkedTable(t) } }
}
