// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec
import RCU

/// The guest side of a MIPS vcpu: memory accesses through the host TLB, TLB refill
/// from the GPA table, GPA faults into `kvm_mips_map_page()`, and the run loop.
///
/// The refill follows the MIPS VZ refill handler (kvm_mips_build_tlb_refill_exception,
/// arch/mips/kvm/entry.c; VZ support arrived in v4.12, after seed 004): it walks
/// the GPA page table without taking mmu_lock.
/// Here that walk is an RCU read section, with a scheduling point between levels so
/// that a writer can overtake it.
///
/// Locking: the TLB of `vcpu.cpu` is touched only by this vcpu while it holds the
/// CPU (`cpuLock`, standing for the host scheduler running it there).
public final class MIPSVCPUContext: @unchecked Sendable {
    public let vcpu: VCPUState
    public let mmu: MIPSMMU
    public let cache: MMUMemoryCache
    let cpuLock: SpinLock
    // Objects every guest access uses, as strong `let`s: a method borrows them
    // from `self` with no reference counting (an `unowned(unsafe)` reference is
    // retained and released at each use, and on real threads that count bounces
    // between the vcpus' CPUs).
    let kvm: KVM
    let engine: SimEngine
    /// The TLB of the CPU this vcpu is loaded on (`vcpu.cpu`, fixed).
    let tlb: MIPSTLB
    /// `kvm.rcu`, `mmu.table`, `mmu.oracle`, `kvm.hostMM.pages`.
    let rcu: any RCUDomain
    let gpaTable: PageTable
    let oracle: MMUOracle
    let pages: HostPages
    private var writeCounter: UInt64 = 0
    /// Whether this vcpu is the only writer of a gfn (the lost-write read-back check
    /// applies to the writer's own pages).
    let ownsGfn: (Int) -> Bool
    /// Operations completed (an atomic: the runner reads it).
    private let counters = AtomicWords(count: 1)
    public var completedOps: Int { Int(counters.load(0)) }

    public init(vcpu: VCPUState, mmu: MIPSMMU, cpuLock: SpinLock, ownsGfn: @escaping (Int) -> Bool) {
        self.vcpu = vcpu
        self.mmu = mmu
        self.cpuLock = cpuLock
        self.ownsGfn = ownsGfn
        kvm = mmu.kvm
        engine = mmu.engine
        tlb = mmu.tlbs[vcpu.cpu]
        rcu = mmu.kvm.rcu
        gpaTable = mmu.table
        oracle = mmu.oracle
        pages = mmu.kvm.hostMM.pages
        cache = MMUMemoryCache(table: mmu.table)
    }

    deinit { counters.free() }

    /// A world reset in place: the write counter as built (its memory cache
    /// is empty after a schedule that finished; the words are the world's
    /// `WorldMemory` to restore). False if the cache still holds tables.
    public func resetForReuse() -> Bool {
        guard cache.objects.isEmpty else { return false }
        writeCounter = 0
        return true
    }

    enum AccessResult { case done, fault }

    /// A guest load or store in guest mode: TLB hit, or refill then hit, or a fault.
    func guestAccess(_ op: GuestOp) -> AccessResult {
        for _ in 0..<2 {
            if let e = tlb.lookup(tag: vcpu.id, vpn: op.gfn) {
                if op.write && !e.dirty { return .fault }    // TLB modified exception
                perform(op, pfn: e.pfn, via: "TLB", stamp: e.stamp)
                return .done
            }
            // TLB refill: lock-free walk of the GPA table.
            let p = rcu.read { gpaTable.lookupLockless(op.gfn, point: "tlb_refill:walk") }
            guard p.isPresent && p.isYoung else { return .fault }   // TLB invalid exception
            tlb.fill(.init(tag: vcpu.id, vpn: op.gfn, pfn: p.pfn, dirty: p.isDirty, stamp: oracle.agingClock))
            engine.event("vcpu\(vcpu.id): TLB refill gfn \(op.gfn) -> pfn \(p.pfn)\(p.isDirty ? " D" : "")")
        }
        return .fault
    }

    private func perform(_ op: GuestOp, pfn: Int, via: String, stamp: UInt64) {
        if op.write {
            writeCounter += 1
            let value = UInt64(vcpu.id + 1) << 40 | writeCounter
            oracle.guestAccess(vcpu: vcpu.id, gfn: op.gfn, pfn: pfn, write: value, via: via, tlbStamp: stamp)
            guard pages.isInUse(pfn) else { return }
            pages.content.store(pfn, value)
            if ownsGfn(op.gfn) { oracle.recordWrite(gfn: op.gfn, value: value) }
            engine.event("vcpu\(vcpu.id): write gfn \(op.gfn) = \(value & 0xFF_FFFF) via pfn \(pfn)")
        } else {
            oracle.guestAccess(vcpu: vcpu.id, gfn: op.gfn, pfn: pfn, write: nil, via: via, tlbStamp: stamp)
            let value = pages.content.load(pfn)
            if ownsGfn(op.gfn) { oracle.checkReadBack(vcpu: vcpu.id, gfn: op.gfn, value: value) }
            engine.event("vcpu\(vcpu.id): read gfn \(op.gfn) via pfn \(pfn)")
        }
    }

    /// kvm_vz_check_requests(): KVM_REQ_TLB_FLUSH flushes this vcpu's translations.
    func checkRequests() {
        if vcpu.checkRequest(VCPUState.reqTLBFlush) {
            tlb.flush(tag: vcpu.id)
            engine.event("vcpu\(vcpu.id): KVM_REQ_TLB_FLUSH: flushed cpu\(vcpu.cpu) TLB")
        }
    }

    /// One guest operation to completion: enter the guest, access, and on a GPA fault
    /// exit, `kvm_mips_map_page()`, invalidate the TLB entry, and enter again.
    public func runOp(_ op: GuestOp) {
        cpuLock.lock()                                  // vcpu_load() on its CPU
        defer { cpuLock.unlock() }                      // vcpu_put()
        while !engine.stopRequested {
            checkRequests()
            engine.point("vcpu_enter_guest")
            guard vcpu.enterGuestMode() else { engine.yieldPoint("vcpu_enter_guest:cancelled"); continue }
            let r = guestAccess(op)
            vcpu.exitGuestMode()
            if r == .done { counters.add(0, 1); return }
            engine.point("kvm_mips_handle_exit:gpa_fault")
            switch mmu.kvmMipsMapPage(vcpu, cache: cache, gfn: op.gfn, write: op.write) {
            case .success:
                tlb.invalidate(tag: vcpu.id, vpn: op.gfn)   // kvm_vz_host_tlb_inv()
            case .failure(.efault):
                counters.add(0, 1)                        // emulated as MMIO: nothing mapped
                engine.event("vcpu\(vcpu.id): gfn \(op.gfn) \(op.write ? "write" : "read") -> EFAULT, emulated as MMIO")
                return
            case .failure(.enomem):
                engine.yieldPoint("kvm_mips_map_page:enomem")
                continue
            case .failure(.eintr):
                return
            }
        }
    }
}
