// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// What `MMUOracle` needs of a VM's invalidation state, whichever notifier
/// protocol the VM has: the v4.x counters (`MMUNotifierCounters`:
/// `mmu_notifier_count` and `_seq`) or today's gfn-ranged state
/// (`MMUInvalidateState`). Both answer for the fault's own gfn, so the oracle's
/// I2 and spurious-retry checks judge each protocol by its own rule.
///
/// Reads only (oracle checks): never a scheduling point.
public protocol InvalidationGate: AnyObject, Sendable {
    /// Why a fault that snapshotted `mmuSeq` may not install a mapping of `gfn`
    /// now (an invalidation of it in progress, or one finished since the
    /// snapshot), as one line; nil when it may.
    func installBlocker(gfn: Int, mmuSeq: UInt64) -> String?
    /// Whether a fault that snapshotted `mmuSeq` has a reason to retry: an
    /// invalidation ran or is running since the snapshot.
    func retryJustified(gfn: Int, mmuSeq: UInt64) -> Bool
}

extension MMUNotifierCounters: InvalidationGate {
    public func installBlocker(gfn: Int, mmuSeq: UInt64) -> String? {
        guard count != 0 || seq != mmuSeq else { return nil }
        return "mmu_notifier_count = \(count) and mmu_notifier_seq = \(seq) (snapshot \(mmuSeq))"
    }

    public func retryJustified(gfn: Int, mmuSeq: UInt64) -> Bool { count != 0 || seq != mmuSeq }
}

extension MMUInvalidateState: InvalidationGate {
    public func installBlocker(gfn: Int, mmuSeq: UInt64) -> String? {
        let g = UInt64(gfn)
        let covered = inProgress != 0 && (range.map { $0.contains(g) } ?? true)
        guard covered || seq != mmuSeq else { return nil }
        return "mmu_invalidate_in_progress = \(inProgress) over gfns \(range.map { "\($0)" } ?? "none") and mmu_invalidate_seq = \(seq) (snapshot \(mmuSeq))"
    }

    public func retryJustified(gfn: Int, mmuSeq: UInt64) -> Bool { inProgress != 0 || seq != mmuSeq }
}
