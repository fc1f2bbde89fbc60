// SPDX-License-Identifier: GPL-2.0-only
import CFiber

extension Oracle {
    /// The locking rules model functions state (`lockdep_assert_held()` and its
    /// kin, include/linux/lockdep.h), checked where they are stated.
    public static let lockdep = Oracle("lockdep", "a function that requires a lock runs with the lock held by its caller, and a lock is released by its holder")
}

/// The identity of the calling context as a lock holder: the running executor
/// (a host CPU or vcpu actor), or one tag for every thread outside the simulator
/// (tests). Never 0, the "unlocked" value of a lock word.
@inlinable @inline(__always)
public func lockHolderTag() -> UInt64 {
    guard let e = kvmsim_current_executor() else { return 1 }
    return UInt64(UInt(bitPattern: e))
}

extension SimEngine {
    /// lockdep_assert(): reports `lockdep` when `holds` is false. `rule` says
    /// which function requires which lock ("kvm_unmap_hva_range() needs
    /// kvm->mmu_lock"). Costs a compare when the rule holds; the report is
    /// built only when it does not.
    @inlinable @inline(__always)
    public func lockdepAssert(_ holds: @autoclosure () -> Bool, _ rule: @autoclosure () -> String) {
        if !withoutAccessPoints(holds) { report(.lockdep, rule()) }
    }
}
