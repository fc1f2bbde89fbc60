// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The host's ASID allocator (arch/mips/include/asm/mmu_context.h): per host CPU
/// an `asid_cache` whose low `bits` bits are the ASID and whose high bits are a
/// version (the ASID cycle).
///
/// Locking: `asid_cache(cpu)` is touched only by code running on that CPU (the
/// holder of the CPU), as in the kernel where it runs with preemption off.
public final class ASIDAllocator: @unchecked Sendable {
    public let bits: Int
    public let cpus: Int
    private let cache: AtomicWords
    /// Completed ASID cycles per CPU (narration and tests).
    private let cycles: AtomicWords

    public init(bits: Int, cpus: Int) {
        precondition((1...14).contains(bits))
        self.bits = bits
        self.cpus = cpus
        cache = AtomicWords(count: cpus, initial: UInt64(1) << bits, kernel: true)   // asid_first_version()
        cycles = AtomicWords(count: cpus)
    }

    deinit { cache.free(); cycles.free() }

    /// cpu_asid_mask().
    public var asidMask: UInt64 { (UInt64(1) << bits) - 1 }
    /// asid_version_mask().
    public var versionMask: UInt64 { ~asidMask }
    /// asid_first_version().
    public var firstVersion: UInt64 { UInt64(1) << bits }

    /// asid_cache(cpu).
    public func asidCache(_ cpu: Int) -> UInt64 { cache.load(cpu) }
    public func newCycles(_ cpu: Int) -> Int { Int(cycles.load(cpu)) }

    /// Whether a context value is stale on `cpu`: `(ctx ^ asid_cache(cpu)) &
    /// asid_version_mask(cpu)`. A context of 0 is always stale.
    public func isStale(_ context: UInt64, cpu: Int) -> Bool {
        (context ^ asidCache(cpu)) & versionMask != 0
    }

    /// kvm_get_new_mmu_context() / get_new_mmu_context(): the next ASID on `cpu`;
    /// when the ASID space is used up, a new cycle starts and `cpu`'s whole TLB is
    /// flushed (`kvm_local_flush_tlb_all()`). Returns the new context value.
    public func newContext(cpu: Int, tlb: MIPSTLB) -> UInt64 {
        var asid = asidCache(cpu) &+ 1
        if asid & asidMask == 0 {
            tlb.flushAll()                           // start new asid cycle
            cycles.add(cpu, 1)
            if asid == 0 { asid = firstVersion }     // fix version if needed
        }
        cache.store(cpu, asid)
        return asid
    }
}
