// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// `kvm->mmu_notifier_seq` and `kvm->mmu_notifier_count` (include/linux/kvm_host.h,
/// v4.9-v5.12 names): the sequence count every finished invalidation bumps, and
/// the number of invalidations in progress.
///
/// Locking: both change only under `kvm->mmu_lock`; a faulting vcpu reads `seq`
/// without the lock before it looks up a pfn (then smp_rmb()), and compares
/// again under the lock (`retry`). Oracles read both (atomics).
public final class MMUNotifierCounters: @unchecked Sendable {
    private enum Field: Int, CaseIterable { case seq, count }
    private let words = AtomicRecords<Field>(count: 1, kernel: true)

    public init() {}
    deinit { words.free() }

    public var seq: UInt64 { words.load(0, .seq) }
    public var count: UInt64 { words.load(0, .count) }

    /// Starts `seq` at `value`, as for a VM whose host already ran that many
    /// invalidations. Before any actor runs.
    public func setSeq(_ value: UInt64) { words.store(0, .seq, value) }

    /// mmu_notifier_count++ (invalidate_range_start).
    func raiseCount() { words.add(0, .count, 1) }
    /// mmu_notifier_seq++ (invalidate_range_end, change_pte).
    func bumpSeq() { words.add(0, .seq, 1) }
    /// mmu_notifier_count-- (invalidate_range_end); returns the new count.
    func dropCount() -> UInt64 { words.sub(0, .count, 1) }

    /// mmu_notifier_retry(kvm, mmu_seq): mmu_lock held.
    public func retry(_ mmuSeq: UInt64) -> Bool {
        if words.load(0, .count) != 0 { return true }
        smp_rmb()
        return words.load(0, .seq) != mmuSeq
    }
}
