// SPDX-License-Identifier: GPL-2.0-only
import CURCU

// The kernel's memory barriers (Documentation/memory-barriers.txt). All three
// are a full fence here: the model's shared memory is C11 atomics with
// acquire/release (AtomicWords), and the deterministic scheduler runs one actor
// at a time (sequential consistency), so a weaker fence would buy nothing.

/// smp_mb().
@inlinable @inline(__always) public func smp_mb() { kvmsim_smp_mb() }
/// smp_rmb().
@inlinable @inline(__always) public func smp_rmb() { kvmsim_smp_mb() }
/// smp_wmb().
@inlinable @inline(__always) public func smp_wmb() { kvmsim_smp_mb() }
