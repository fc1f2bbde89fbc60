// SPDX-License-Identifier: GPL-2.0-only
import CURCU
import CFiber

// The kernel's memory barriers (Documentation/memory-barriers.txt). On real
// threads all three are a full fence: the model's shared memory is C11 atomics
// with acquire/release (AtomicWords). In deterministic mode the scheduler runs
// one actor at a time (sequential consistency), except for the weakly ordered
// words of the `pso` memory model (StoreBuffer.swift), whose pending stores
// smp_mb() makes visible and smp_wmb() orders. Loads are never reordered, so
// smp_rmb() has nothing more to do.

/// smp_mb().
@inlinable @inline(__always) public func smp_mb() { kvmsim_smp_mb(); storeBufferFence() }
/// smp_rmb().
@inlinable @inline(__always) public func smp_rmb() { kvmsim_smp_mb() }
/// smp_wmb().
@inlinable @inline(__always) public func smp_wmb() {
    kvmsim_smp_mb()
    if kvmsim_store_buffers_in_use() != 0 { storeBufferWriteBarrier() }
}
