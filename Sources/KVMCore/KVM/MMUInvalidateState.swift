// SPDX-License-Identifier: GPL-2.0-only
import SimExec

extension Oracle {
    /// The kernel's own assertions in the code modelled (WARN_ON_ONCE(),
    /// KVM_BUG_ON()): one firing is a bug in that code, or in the model.
    public static let kvmWarn = Oracle("kvm-warn", "no WARN_ON_ONCE() or KVM_BUG_ON() of the modelled kernel code fires")
}

extension SimEngine {
    /// WARN_ON_ONCE() / KVM_BUG_ON() of the modelled kernel code: reported
    /// each time it fires (the oracle's first report is the one a run keeps).
    public func kvmWarnOn(_ condition: Bool, _ what: @autoclosure () -> String) {
        if condition { report(.kvmWarn, what()) }
    }
}

/// Today's invalidation state of `struct kvm` (include/linux/kvm_host.h,
/// CONFIG_KVM_GENERIC_MMU_NOTIFIER; text read: v6.14-era master; the gfn
/// range and begin/range_add split came with guest_memfd, v6.8 we believe):
/// `mmu_invalidate_seq`, `mmu_invalidate_in_progress` and the gfn range
/// `[mmu_invalidate_range_start, mmu_invalidate_range_end)` that covers every
/// invalidation in progress (`INVALID_GPA` while none has added a range).
///
/// Locking: everything changes only with `kvm->mmu_lock` held for write
/// (`kvm_mmu_invalidate_begin/range_add/end()` assert it); a fault snapshots
/// `seq` without the lock (then smp_rmb()) and checks again with the lock held
/// for read or write (`retryGFN`); `retryGFNUnsafe` is the lockless pre-check.
/// The words are atomics so that oracles and the unsafe check may read them.
public final class MMUInvalidateState: @unchecked Sendable {
    enum Field: Int, CaseIterable { case seq, inProgress, rangeStart, rangeEnd }
    private let words = AtomicRecords<Field>(count: 1, kernel: true)
    let engine: SimEngine
    /// `kvm->mmu_lock` (an rwlock on x86 and arm64: KVM_HAVE_MMU_RWLOCK).
    let mmuLock: RWLock

    /// INVALID_GPA (~(gpa_t)0): no range added yet.
    public static let invalidGFN = UInt64.max

    public init(engine: SimEngine, mmuLock: RWLock) {
        self.engine = engine
        self.mmuLock = mmuLock
        words.store(0, .rangeStart, Self.invalidGFN)
        words.store(0, .rangeEnd, Self.invalidGFN)
    }
    deinit { words.free() }

    public var seq: UInt64 { words.load(0, .seq) }
    public var inProgress: UInt64 { words.load(0, .inProgress) }
    /// The tracked range, nil while it is INVALID_GPA.
    public var range: Range<UInt64>? {
        let s = words.load(0, .rangeStart), e = words.load(0, .rangeEnd)
        return s == Self.invalidGFN || e == Self.invalidGFN ? nil : s..<max(s, e)
    }

    /// Starts `seq` at `value` (a VM whose host already ran that many
    /// invalidations). Before any actor runs.
    public func setSeq(_ value: UInt64) { words.store(0, .seq, value) }

    /// kvm_mmu_invalidate_begin() (virt/kvm/kvm_main.c): mmu_lock held for write.
    public func begin() {
        mmuLock.assertHeldWrite("kvm_mmu_invalidate_begin")
        // The count increase must be visible at unlock time: no spte can be
        // established without mmu_lock, and the count is read under it.
        let n = words.add(0, .inProgress, 1)
        if n == 1 {
            words.store(0, .rangeStart, Self.invalidGFN)
            words.store(0, .rangeEnd, Self.invalidGFN)
        }
    }

    /// kvm_mmu_invalidate_range_add(): mmu_lock held for write. Concurrent
    /// invalidations' ranges are not tracked apart: the range grows to cover
    /// each, and stays until every one of them has ended.
    public func rangeAdd(_ gfns: Range<UInt64>) {
        mmuLock.assertHeldWrite("kvm_mmu_invalidate_range_add")
        engine.kvmWarnOn(words.load(0, .inProgress) == 0, "kvm_mmu_invalidate_range_add() with no invalidation in progress")
        if words.load(0, .rangeStart) == Self.invalidGFN {
            words.store(0, .rangeStart, gfns.lowerBound)
            words.store(0, .rangeEnd, gfns.upperBound)
        } else {
            words.store(0, .rangeStart, min(words.load(0, .rangeStart), gfns.lowerBound))
            words.store(0, .rangeEnd, max(words.load(0, .rangeEnd), gfns.upperBound))
        }
    }

    /// kvm_mmu_invalidate_end(): mmu_lock held for write. The seq increase is
    /// visible before the count decrease (smp_wmb(), paired with the smp_rmb()
    /// of the retry checks).
    public func end() {
        mmuLock.assertHeldWrite("kvm_mmu_invalidate_end")
        words.add(0, .seq, 1)
        smp_wmb()
        // Unconditional, as the kernel's: below zero (here: wrapped) every
        // retry check says retry until the VM, marked bugged, goes away.
        let now = words.sub(0, .inProgress, 1)
        engine.kvmWarnOn(now == UInt64.max, "KVM_BUG_ON(kvm->mmu_invalidate_in_progress < 0)")
        // At least one range must have been added between begin and end.
        engine.kvmWarnOn(words.load(0, .rangeStart) == Self.invalidGFN, "kvm_mmu_invalidate_end() with no range added")
    }

    /// mmu_invalidate_retry(kvm, mmu_seq): any invalidation in progress, or one
    /// finished since the snapshot. Called with mmu_lock held or under a
    /// per-page lock (PPC Book3S HV), hence the smp_rmb().
    public func retry(_ mmuSeq: UInt64) -> Bool {
        if words.load(0, .inProgress) != 0 { return true }
        smp_rmb()
        return words.load(0, .seq) != mmuSeq
    }

    /// mmu_invalidate_retry_gfn(kvm, mmu_seq, gfn): mmu_lock held (read or
    /// write). Retry if an invalidation in progress covers `gfn` (the range
    /// may be larger than any one invalidation: false positives are allowed),
    /// or one finished since the snapshot.
    public func retryGFN(_ mmuSeq: UInt64, gfn: UInt64) -> Bool {
        mmuLock.assertHeld("mmu_invalidate_retry_gfn")
        if words.load(0, .inProgress) != 0 {
            let s = words.load(0, .rangeStart), e = words.load(0, .rangeEnd)
            // Dropping mmu_lock after begin but before range_add is a KVM bug.
            if s == Self.invalidGFN || e == Self.invalidGFN {
                engine.kvmWarnOn(true, "mmu_invalidate_retry_gfn(): invalidation in progress with no range")
                return true
            }
            if gfn >= s && gfn < e { return true }
        }
        return words.load(0, .seq) != mmuSeq
    }

    /// mmu_invalidate_retry_gfn_unsafe(): the lockless pre-check of
    /// kvm_faultin_pfn() (v6.9 or v6.10, unconfirmed). May answer wrongly both ways; it must be
    /// followed by `retryGFN` with the lock held.
    public func retryGFNUnsafe(_ mmuSeq: UInt64, gfn: UInt64) -> Bool {
        if words.load(0, .inProgress) != 0 && gfn >= words.load(0, .rangeStart) && gfn < words.load(0, .rangeEnd) { return true }
        return words.load(0, .seq) != mmuSeq
    }
}
