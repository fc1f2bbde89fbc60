// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The part of `struct mm_struct` the ASID code uses: `cpu_context(cpu, mm)` (the
/// 4.10 KVM code calls the same array `mm.context.asid[cpu]`).
public final class MipsMM: @unchecked Sendable {
    public let name: String
    private let context: AtomicWords

    public init(name: String, cpus: Int) {
        self.name = name
        context = AtomicWords(count: cpus, kernel: true)
    }

    deinit { context.free() }

    /// cpu_context(cpu, mm).
    public func cpuContext(_ cpu: Int) -> UInt64 { context.load(cpu) }
    /// cpu_context(cpu, mm) = value.
    public func setCPUContext(_ cpu: Int, _ value: UInt64) { context.store(cpu, value) }

    /// get_new_mmu_context(mm, cpu).
    public func getNewMMUContext(cpu: Int, asids: ASIDAllocator, tlb: MIPSTLB) {
        setCPUContext(cpu, asids.newContext(cpu: cpu, tlb: tlb))
    }

    /// The "if stale, get a new context" step of switch_mm() / check_mmu_context().
    public func checkMMUContext(cpu: Int, asids: ASIDAllocator, tlb: MIPSTLB) {
        if asids.isStale(cpuContext(cpu), cpu: cpu) { getNewMMUContext(cpu: cpu, asids: asids, tlb: tlb) }
    }
}
