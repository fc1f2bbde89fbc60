// SPDX-License-Identifier: GPL-2.0-only
import KVMCore

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
        cache = AtomicWords(count: cpus, initial: UInt64(1) << bits)   // asid_first_version()
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
    public func newContext(cpu: Int, tlb: HostTLB) -> UInt64 {
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

/// The part of `struct mm_struct` the ASID code uses: `cpu_context(cpu, mm)` (the
/// 4.10 KVM code calls the same array `mm.context.asid[cpu]`).
public final class MipsMM: @unchecked Sendable {
    public let name: String
    private let context: AtomicWords

    public init(name: String, cpus: Int) {
        self.name = name
        context = AtomicWords(count: cpus)
    }

    deinit { context.free() }

    /// cpu_context(cpu, mm).
    public func cpuContext(_ cpu: Int) -> UInt64 { context.load(cpu) }
    /// cpu_context(cpu, mm) = value.
    public func setCPUContext(_ cpu: Int, _ value: UInt64) { context.store(cpu, value) }

    /// get_new_mmu_context(mm, cpu).
    public func getNewMMUContext(cpu: Int, asids: ASIDAllocator, tlb: HostTLB) {
        setCPUContext(cpu, asids.newContext(cpu: cpu, tlb: tlb))
    }

    /// The "if stale, get a new context" step of switch_mm() / check_mmu_context().
    public func checkMMUContext(cpu: Int, asids: ASIDAllocator, tlb: HostTLB) {
        if asids.isStale(cpuContext(cpu), cpu: cpu) { getNewMMUContext(cpu: cpu, asids: asids, tlb: tlb) }
    }
}
