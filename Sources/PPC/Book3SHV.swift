// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Seed 002's variants of the TLB-invalidation choice and the entry flush.
public enum TLBInvalidationVariant: String, CaseIterable, Sendable {
    /// v3.7: local when H_LOCAL is set or the guest has one vcpu; each thread
    /// flushes the whole TLB on entry when its vcpu last ran elsewhere or its
    /// thread last ran another vcpu (`last_vcpu[]` / `last_cpu`).
    case preFix = "pre-fix"
    /// Seed 002: `global_invalidates()`, `need_tlb_flush`, `online_vcores`.
    case patched
}

/// hcall flags (include/asm/hvcall.h) the model uses.
public struct HCallFlags: OptionSet, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let exact = HCallFlags(rawValue: 1 << 0)     // H_EXACT
    public static let avpn = HCallFlags(rawValue: 1 << 1)      // H_AVPN
    public static let local = HCallFlags(rawValue: 1 << 2)     // H_LOCAL
    public static let readOnly = HCallFlags(rawValue: 1 << 3)  // H_PROTECT's new PP: read-only
}

/// hcall return codes (PAPR).
public enum HCallStatus: Int, Sendable {
    case success = 0          // H_SUCCESS
    case parameter = -4       // H_PARAMETER
    case notFound = -5        // H_NOT_FOUND
    case ptegFull = -6        // H_PTEG_FULL
    case resource = -16       // H_RESOURCE
}

/// Counters for the commit's claims (flushes per entry, local vs. global).
public enum PPCCounter: Int, CaseIterable, Sendable {
    case vcoreEntries, threadEntries, entryFlushes, tlbie, tlbiel, localInvalidations, globalInvalidations, hpteFaults
    public var name: String {
        switch self {
        case .vcoreEntries: "vcore-entries"
        case .threadEntries: "thread-entries"
        case .entryFlushes: "entry-tlb-flushes"
        case .tlbie: "tlbie"
        case .tlbiel: "tlbiel"
        case .localInvalidations: "local-invalidations"
        case .globalInvalidations: "global-invalidations"
        case .hpteFaults: "hpte-faults"
        }
    }
}

/// The host: physical cores of `threadsPerCore` hardware threads (host CPU
/// `core * threadsPerCore + t`), one TLB per core, and which vcore occupies
/// each core.
public final class PPCHost: @unchecked Sendable {
    public let cores: Int
    public let threadsPerCore: Int
    public let tlbs: [CoreTLB]
    /// Per core: vcore id + 1 while a vcore runs there, else 0.
    let coreOwner: AtomicWords

    public init(cores: Int, threadsPerCore: Int, tlbSize: Int) {
        self.cores = cores
        self.threadsPerCore = threadsPerCore
        tlbs = (0..<cores).map { CoreTLB(core: $0, size: tlbSize) }
        coreOwner = AtomicWords(count: cores)
    }
    deinit { coreOwner.free() }

    public var cpus: Int { cores * threadsPerCore }
}

/// `struct kvmppc_vcore`: the vcpus that run together on one physical core.
///
/// `pcpu` (thread 0 of the core it runs on), `in_guest` and the entry generation
/// are written by the vcore's runner only; vcpus read them.
public final class Vcore: @unchecked Sendable {
    public let id: Int
    /// Filled while the VM is built (`createVCPU`), read-only once vcpus run: no
    /// dynamic exclusivity checks (the scheduler's wait predicates read it at every step).
    @exclusivity(unchecked) public internal(set) var vcpus: [PPCVCPU] = []
    /// pcpu + 1 (0: not placed yet), in_guest, entry generation.
    let words = AtomicWords(count: 3)
    /// Per vcpu of this vcore: the entry generation it finished (acks). Set with `vcpus`.
    @exclusivity(unchecked) var acks: AtomicWords!

    init(id: Int) { self.id = id }
    deinit { words.free(); acks?.free() }

    /// vc->pcpu: thread 0 of the core, or nil before the first run.
    public var pcpu: Int? { let p = words.load(0); return p == 0 ? nil : Int(p - 1) }
    public var inGuest: Bool { words.load(1) != 0 }
    public var entryGeneration: UInt64 { words.load(2) }
}

/// `vcpu->arch` of a Book3S HV vcpu: its vcore, its thread in the vcore, and the
/// pre-fix `last_cpu`.
public final class PPCVCPU: @unchecked Sendable {
    public let id: Int
    /// unowned(unsafe): the vcore holds its vcpus, and `Book3SHV.vcores` the vcore.
    public unowned(unsafe) let vcore: Vcore
    /// vcpu->arch.ptid: the hardware thread within the core.
    public let ptid: Int
    /// vcpu->arch.last_cpu (pre-fix); written by this vcpu's thread only.
    var lastCPU: Int = 0

    init(id: Int, vcore: Vcore, ptid: Int) { self.id = id; self.vcore = vcore; self.ptid = ptid }
}

/// `kvm->arch` of a Book3S HV VM on a POWER7 host using MMU notifiers, with the
/// HPT hcalls of arch/powerpc/kvm/book3s_hv_rm_mmu.c, the MMU-notifier hooks and
/// the HPTE fault of arch/powerpc/kvm/book3s_64_mmu_hv.c, and the TLB flush of
/// kvmppc_hv_entry (book3s_hv_rmhandlers.S), in v3.7 (pre-fix) and v3.8 (seed
/// 002) form.
///
/// Locking rules (as in the kernel):
/// - an HPTE changes only under its HVLOCK bit; a hardware walk reads it unlocked;
/// - the rmap chain of a gfn changes only under its rmap lock; nobody spins on an
///   HPTE lock while holding an rmap lock;
/// - `tlbie_lock` serialises global invalidations (`tlbie` ... `tlbsync`);
/// - `need_tlb_flush` bits are set by a CPU that did a local invalidation and
///   test-and-cleared (atomically) by the primary thread of a core entering the
///   guest, before that core's flush;
/// - the MMU-notifier callbacks run under `kvm->mmu_lock`; the HPTE fault and
///   H_ENTER check `mmu_notifier_retry()` under the gfn's rmap lock.
public final class Book3SHV: KVMArchMMU, @unchecked Sendable {
    /// Coverage marks.
    public static let markTLBIE = CoverageMark("ppc: tlbie (global)")
    public static let markTLBIEL = CoverageMark("ppc: tlbiel (local)")
    public static let markNeedFlushConsumed = CoverageMark("ppc: need_tlb_flush bit consumed at entry")
    public static let markLastCPUFlush = CoverageMark("ppc: last_cpu/last_vcpu entry flush")
    public static let markEnterRetry = CoverageMark("ppc: H_ENTER written absent (mmu_notifier_retry)")
    public static let markFault = CoverageMark("ppc: HPTE fault validates an HPTE")
    public static let markFaultRetry = CoverageMark("ppc: HPTE fault mmu_notifier_retry taken")
    public static let markUnmap = CoverageMark("ppc: kvm_unmap_rmapp invalidates an HPTE")
    public let kvm: KVM
    public let engine: SimEngine
    public let variant: TLBInvalidationVariant
    public let host: PPCHost
    public let hpt: HPT
    let rmap: RMap
    public let oracle: PPCTLBOracle
    public let lpid = 1
    /// kvm->arch.need_tlb_flush (a cpumask; host CPUs <= 64 here).
    let needTLBFlush = AtomicWords(count: 1)
    /// kvm->arch.last_vcpu[NR_CPUS] (pre-fix).
    let lastVCPU: AtomicWords
    /// kvm->arch.tlbie_lock.
    let tlbieLock: SpinLock
    /// kvm->arch.online_vcores (seed 002) and kvm->online_vcpus.
    public private(set) var onlineVcores = 0
    public private(set) var onlineVCPUs = 0
    /// kvm->arch.using_mmu_notifiers: true on POWER7.
    public let usingMMUNotifiers = true
    public private(set) var vcores: [Vcore] = []
    public private(set) var vcpus: [PPCVCPU] = []
    /// kvm->arch.vcpus_running, kvm->arch.rma_setup_done.
    let vmWords = AtomicWords(count: 2)
    let counters = AtomicWords(count: PPCCounter.allCases.count)

    public init(kvm: KVM, variant: TLBInvalidationVariant, host: PPCHost, hptGroups: Int) {
        self.kvm = kvm
        engine = kvm.engine
        self.variant = variant
        self.host = host
        hpt = HPT(groups: hptGroups, engine: kvm.engine)
        rmap = RMap(gfns: kvm.memslots.maxGfn, npte: hpt.npte, engine: kvm.engine)
        oracle = PPCTLBOracle(engine: kvm.engine, hostMM: kvm.hostMM, memslots: kvm.memslots, npte: hpt.npte)
        lastVCPU = AtomicWords(count: host.cpus + 4)
        tlbieLock = SpinLock("try_lock_tlbie(&kvm->arch.tlbie_lock)", engine: kvm.engine)
        precondition(host.cpus <= 64, "need_tlb_flush is one word in the model")
        kvm.arch = self
        kvm.registerMMUNotifier()
        // The generic MMUOracle checks the GPA page table, which a Book3S HV VM
        // does not use; PPCTLBOracle checks the HPT and the core TLBs instead.
        kvm.hostMM.observer = nil
        kvm.oracle.kvmSubscribed = false
        vmWords.store(1, 1)
        // kvmppc_alloc_hpt() (seed 002): any core may hold stale entries of a
        // previous VM with this LPID.
        if variant == .patched { needTLBFlush.store(0, allCPUs) }
    }

    deinit { needTLBFlush.free(); lastVCPU.free(); vmWords.free(); counters.free() }

    var allCPUs: UInt64 { host.cpus == 64 ? ~0 : (1 << UInt64(host.cpus)) - 1 }
    public func counter(_ c: PPCCounter) -> Int { Int(counters.load(c.rawValue)) }
    func count(_ c: PPCCounter) { counters.add(c.rawValue, 1) }
    public var needTLBFlushMask: UInt64 { needTLBFlush.load(0) }

    /// kvmppc_core_vcpu_create(): vcpu `id` joins vcore `id / vcpusPerVcore`
    /// (threads_per_core), creating the vcore (and counting it online) if needed.
    /// Call before any actor runs.
    @discardableResult
    public func createVCPU(vcpusPerVcore: Int) -> PPCVCPU {
        let id = vcpus.count
        let core = id / vcpusPerVcore
        if core == vcores.count {
            vcores.append(Vcore(id: core))
            onlineVcores += 1
        }
        let v = PPCVCPU(id: id, vcore: vcores[core], ptid: id % vcpusPerVcore)
        vcores[core].vcpus.append(v)
        vcpus.append(v)
        onlineVCPUs += 1
        return v
    }

    /// Allocates each vcore's ack words once every vcpu exists.
    public func finishCreation() {
        for vc in vcores { vc.acks = AtomicWords(count: vc.vcpus.count) }
    }

    func core(of vcpu: PPCVCPU) -> Int { (vcpu.vcore.pcpu ?? 0) / host.threadsPerCore }

    // MARK: - local vs. global invalidation

    /// Whether an invalidation on behalf of `vcpu` must be global.
    ///
    /// patched: global_invalidates() (book3s_hv_rm_mmu.c, seed 002): local only
    /// when the VM has one vcore, which is running here; then every other core is
    /// marked in `need_tlb_flush` (after an smp_wmb()).
    /// pre-fix: `!(flags & H_LOCAL) && atomic_read(&kvm->online_vcpus) > 1`
    /// (H_BULK_REMOVE passes no flags: local exactly when there is one vcpu).
    func globalInvalidates(_ flags: HCallFlags, _ vcpu: PPCVCPU) -> Bool {
        let global: Bool
        switch variant {
        case .preFix:
            global = !flags.contains(.local) && onlineVCPUs > 1
        case .patched:
            if onlineVcores == 1 && vcpu.vcore.pcpu != nil {
                global = false
            } else if usingMMUNotifiers {
                global = true
            } else {
                global = !flags.contains(.local)
            }
            if !global {
                smp_wmb()
                needTLBFlush.store(0, allCPUs)                       // cpumask_setall()
                engine.point("global_invalidates:setall")
                clearNeedTLBFlush(vcpu.vcore.pcpu!)                 // cpumask_clear_cpu(pcpu)
            }
        }
        count(global ? .globalInvalidations : .localInvalidations)
        return global
    }

    /// Atomically clears `cpu`'s bit; returns whether it was set.
    @discardableResult
    func clearNeedTLBFlush(_ cpu: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(cpu)
        while true {
            let old = needTLBFlush.load(0)
            if old & bit == 0 { return false }
            if needTLBFlush.cas(0, old, old & ~bit) { return true }
        }
    }

    /// `tlbie` under `tlbie_lock`: every core drops its entries for the page.
    func tlbie(vpn: Int) {
        tlbieLock.lock()
        engine.event("tlbie(vpn \(hex(vpn)), lpid \(lpid)): all cores")
        for t in host.tlbs { t.invalidatePage(lpid: lpid, vpn: vpn) }
        count(.tlbie)
        engine.cover(Self.markTLBIE)
        tlbieLock.unlock()
    }

    /// `tlbiel`: this core only.
    func tlbiel(vpn: Int, core: Int) {
        engine.event("tlbiel(vpn \(hex(vpn)), lpid \(lpid)): core \(core) only")
        host.tlbs[core].invalidatePage(lpid: lpid, vpn: vpn)
        count(.tlbiel)
        engine.cover(Self.markTLBIEL)
    }

    /// The invalidation an hcall does for a slot whose VALID bit it just cleared.
    func invalidate(vpn: Int, global: Bool, vcpu: PPCVCPU) {
        engine.point("hcall:invalidate")
        if global { tlbie(vpn: vpn) } else { tlbiel(vpn: vpn, core: core(of: vcpu)) }
    }

    /// kvmppc_invalidate_hpte() (book3s_hv_rm_mmu.c): clear VALID, tlbie; HPTE locked.
    func invalidateHPTE(_ slot: Int) {
        let v = hpt.v(slot)
        hpt.setV(slot, v & ~HPT.valid)
        tlbie(vpn: HPT.avpn(v))
    }

    // MARK: - hcalls (book3s_hv_rm_mmu.c)

    /// kvmppc_do_h_enter() / kvmppc_h_enter(): enter a translation of guest
    /// virtual page `vpn` to `gfn`. With MMU notifiers the HPTE holds no page
    /// reference: it is made VALID only if it could be linked into the gfn's rmap
    /// chain with no invalidation in progress since `mmu_seq` was read, else it is
    /// written ABSENT and the first access faults it in.
    public func hEnter(_ vcpu: PPCVCPU, flags: HCallFlags, pteIndex: Int, vpn: Int, gfn: Int, writable: Bool) -> (HCallStatus, Int) {
        let mmuSeq = kvm.mmuNotifierSeq
        smp_rmb()
        guard pteIndex >= 0, pteIndex < hpt.npte, let slot = kvm.memslots.slot(forGfn: gfn) else { return (.parameter, 0) }
        let gPtel = HPT.makeR(pfn: gfn, writable: writable)
        // Look up the Linux PTE for the backing page (real mode: no reference taken).
        let hva = slot.gfnToHva(gfn)
        let hostPTE = kvm.hostMM.pte(hva)
        engine.point("h_enter:lookup_linux_pte")
        var ptel: UInt64 = 0
        var pteh = HPT.makeV(vpn: vpn, flags: 0)
        if hostPTE.isPresent {
            ptel = HPT.makeR(pfn: hostPTE.pfn, writable: writable)
            if writable && !hostPTE.isWrite { ptel = HPT.makeReadonly(ptel) }
            pteh |= HPT.valid
        } else {
            pteh |= HPT.absent
        }
        // Find and lock the HPTEG slot to use.
        var index = pteIndex
        if !flags.contains(.exact) {
            let group = pteIndex & ~(HPT.hpteGroupSize - 1)
            var found: Int? = nil
            for i in group..<(group + HPT.hpteGroupSize) where hpt.v(i) & (HPT.valid | HPT.absent | HPT.hvlock) == 0 {
                if hpt.tryLock(i) {
                    if hpt.v(i) & (HPT.valid | HPT.absent) == 0 { found = i; break }
                    hpt.unlock(i, hpt.v(i))
                }
            }
            guard let found else { return (.ptegFull, 0) }
            index = found
        } else {
            hpt.lock(index)
            if hpt.v(index) & (HPT.valid | HPT.absent) != 0 {
                hpt.unlock(index, hpt.v(index))
                return (.ptegFull, 0)
            }
        }
        hpt.setGuestRpte(index, gPtel)
        // Link the HPTE into the rmap chain, checking for invalidations under its lock.
        if pteh & HPT.valid != 0 {
            rmap.lock(gfn)
            if kvm.mmuNotifierRetry(mmuSeq) {
                engine.cover(Self.markEnterRetry)
                engine.event("h_enter: mmu_notifier_retry, HPTE \(index) written absent")
                pteh = (pteh | HPT.absent) & ~HPT.valid
            } else {
                rmap.add(gfn, slot: index)
            }
            rmap.unlock(gfn)
        }
        hpt.setR(index, ptel)
        oracle.newTranslation(index, fresh: true)
        hpt.unlock(index, pteh)                                     // eieio; hpte[0] = pteh
        engine.event("vcpu\(vcpu.id): H_ENTER HPTE \(index) = vpn \(hex(vpn)) -> gfn \(gfn) \(pteh & HPT.valid != 0 ? "pfn \(HPT.pfn(ptel))" : "absent")")
        return (.success, index)
    }

    /// The common start of H_REMOVE and H_PROTECT: lock the HPTE; if it is neither
    /// valid nor absent, or H_AVPN is given and the AVPN differs, unlock and
    /// return nil (H_NOT_FOUND). Else return hpte[0] without the lock bit, locked.
    func lockMatchingHPTE(_ pteIndex: Int, flags: HCallFlags, avpn: Int) -> UInt64? {
        hpt.lock(pteIndex)
        let v = hpt.v(pteIndex) & ~HPT.hvlock
        if v & (HPT.absent | HPT.valid) == 0 || (flags.contains(.avpn) && HPT.avpn(v) != avpn) {
            hpt.unlock(pteIndex, v)
            return nil
        }
        return v
    }

    /// H_REMOVE's and H_PROTECT's invalidation of a locked, valid HPTE: clear
    /// VALID, let global_invalidates() (or the pre-fix rule) pick `tlbie` or
    /// `tlbiel`, invalidate. Returns whether it was local.
    func invalidateLockedHPTE(_ i: Int, _ v: UInt64, flags: HCallFlags, vcpu: PPCVCPU) -> Bool {
        hpt.setV(i, hpt.v(i) & ~HPT.valid)
        let global = globalInvalidates(flags, vcpu)
        invalidate(vpn: HPT.avpn(v), global: global, vcpu: vcpu)
        return !global
    }

    /// kvmppc_h_remove().
    public func hRemove(_ vcpu: PPCVCPU, flags: HCallFlags, pteIndex: Int, avpn: Int) -> HCallStatus {
        guard pteIndex >= 0, pteIndex < hpt.npte else { return .parameter }
        guard let v = lockMatchingHPTE(pteIndex, flags: flags, avpn: avpn) else { return .notFound }
        let gen = oracle.generation(pteIndex)
        var local = false
        if v & HPT.valid != 0 {
            local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu)
            removeRevmapChain(pteIndex)
        }
        hpt.unlock(pteIndex, 0)
        engine.event("vcpu\(vcpu.id): H_REMOVE HPTE \(pteIndex) (vpn \(hex(HPT.avpn(v))))\(flags.contains(.local) ? " H_LOCAL" : "")")
        oracle.guestInvalidated(pteIndex, gen: gen, .remove, local: local, vcpu: vcpu.id)
        return .success
    }

    /// kvmppc_h_bulk_remove(): up to four (pte_index, avpn) requests. HPTEs are
    /// collected and left locked, then invalidated in one batch; a busy HPTE ends
    /// the batch early ("don't spin on HPTE locks while holding others").
    public func hBulkRemove(_ vcpu: PPCVCPU, _ requests: [(pteIndex: Int, avpn: Int)]) -> [HCallStatus] {
        let reqs = Array(requests.prefix(4))
        let global = globalInvalidates([], vcpu)
        var status = [HCallStatus](repeating: .success, count: reqs.count)
        var i = 0
        while i < reqs.count {
            var batch: [(slot: Int, vpn: Int, gen: UInt64, wasValid: Bool)] = []
            while i < reqs.count {
                let req = reqs[i]
                guard req.pteIndex >= 0, req.pteIndex < hpt.npte else { status[i] = .parameter; i += 1; continue }
                if !hpt.tryLock(req.pteIndex) {
                    if !batch.isEmpty { break }
                    hpt.lock(req.pteIndex)
                }
                let v = hpt.v(req.pteIndex) & ~HPT.hvlock
                if v & (HPT.absent | HPT.valid) == 0 || HPT.avpn(v) != req.avpn {
                    hpt.unlock(req.pteIndex, v)
                    status[i] = .notFound
                    i += 1
                    continue
                }
                hpt.setV(req.pteIndex, hpt.v(req.pteIndex) & ~HPT.valid)   // leave it locked
                batch.append((req.pteIndex, HPT.avpn(v), oracle.generation(req.pteIndex), v & HPT.valid != 0))
                i += 1
            }
            // Now that we've collected a batch, do the tlbies.
            let toFlush = batch.filter(\.wasValid)
            if !toFlush.isEmpty {
                engine.point("h_bulk_remove:invalidate")
                if global {
                    tlbieLock.lock()
                    for b in toFlush { for t in host.tlbs { t.invalidatePage(lpid: lpid, vpn: b.vpn) }; count(.tlbie) }
                    engine.event("tlbie x\(toFlush.count): all cores")
                    tlbieLock.unlock()
                } else {
                    for b in toFlush { tlbiel(vpn: b.vpn, core: core(of: vcpu)) }
                }
            }
            for b in batch {
                if b.wasValid { removeRevmapChain(b.slot) }
                hpt.unlock(b.slot, 0)
            }
            for b in batch { oracle.guestInvalidated(b.slot, gen: b.gen, .remove, local: !global, vcpu: vcpu.id) }
            if !batch.isEmpty { engine.event("vcpu\(vcpu.id): H_BULK_REMOVE HPTEs \(batch.map(\.slot))") }
        }
        return status
    }

    /// kvmppc_h_protect(): the model's guest only write-protects (PP read-only).
    public func hProtect(_ vcpu: PPCVCPU, flags: HCallFlags, pteIndex: Int, avpn: Int) -> HCallStatus {
        guard pteIndex >= 0, pteIndex < hpt.npte else { return .parameter }
        guard let v = lockMatchingHPTE(pteIndex, flags: flags, avpn: avpn) else { return .notFound }
        // Update the guest view of the second HPTE dword, then the HPTE.
        hpt.setGuestRpte(pteIndex, HPT.makeReadonly(hpt.guestRpte(pteIndex)))
        let r = HPT.makeReadonly(hpt.r(pteIndex))
        let gen = oracle.generation(pteIndex)
        var local = false
        if v & HPT.valid != 0 { local = invalidateLockedHPTE(pteIndex, v, flags: flags, vcpu: vcpu) }
        hpt.setR(pteIndex, r)
        oracle.newTranslation(pteIndex, fresh: false)
        hpt.unlock(pteIndex, v)                                      // eieio; hpte[0] = v
        engine.event("vcpu\(vcpu.id): H_PROTECT HPTE \(pteIndex) read-only\(flags.contains(.local) ? " H_LOCAL" : "")")
        if v & HPT.valid != 0 { oracle.guestInvalidated(pteIndex, gen: gen, .writeProtect, local: local, vcpu: vcpu.id) }
        return .success
    }

    /// remove_revmap_chain(): unlink a slot from its gfn's chain, keeping R; HPTE locked.
    func removeRevmapChain(_ slot: Int) {
        let gfn = HPT.pfn(hpt.guestRpte(slot))
        guard gfn < rmap.gfns else { return }
        rmap.lock(gfn)
        rmap.remove(gfn, slot: slot)
        if hpt.r(slot) & HPT.referenced != 0 { rmap.setReferenced(gfn) }
        rmap.unlock(gfn)
    }

    // MARK: - guest accesses and the HPTE fault (book3s_64_mmu_hv.c)

    enum WalkOutcome { case done, noHPTE, hostFault(slot: Int, v: UInt64, r: UInt64), guestProtection, retry }

    /// A guest load or store by `vcpu` on its core: the core TLB, else the
    /// hardware walk of the HPT's primary group (filling the TLB and setting R/C),
    /// else a hypervisor fault for an ABSENT HPTE or a store to an HPTE the host
    /// made read-only (kvmppc_hpte_hv_fault() -> kvmppc_book3s_hv_page_fault()).
    /// Returns false when the guest has no HPTE for the page (its own page fault).
    public func guestAccess(_ vcpu: PPCVCPU, vpn: Int, write: Bool) -> Bool {
        for _ in 0..<4 {
            engine.point("guest:access")
            let core = core(of: vcpu)
            let outcome: WalkOutcome = host.tlbs[core].withLock { tlb in
                if let e = tlb.lookup(lpid: lpid, vpn: vpn), !write || e.writable {
                    oracle.access(vcpu: vcpu.id, core: core, e, write: write, via: "a TLB hit")
                    return .done
                }
                let g = hpt.group(of: vpn) * HPT.hpteGroupSize
                for i in g..<(g + HPT.hpteGroupSize) {
                    let v = hpt.v(i)
                    guard HPT.avpn(v) == vpn, v & (HPT.valid | HPT.absent) != 0 else { continue }
                    if v & HPT.valid == 0 { return .hostFault(slot: i, v: v & ~HPT.hvlock, r: hpt.r(i)) }
                    let r = hpt.r(i), grpte = hpt.guestRpte(i), gen = oracle.generation(i)
                    guard hpt.v(i) & ~HPT.hvlock == v & ~HPT.hvlock, hpt.r(i) == r else { return .retry }
                    if write && !HPT.isWritable(r) {
                        return HPT.isWritable(grpte) ? .hostFault(slot: i, v: v & ~HPT.hvlock, r: r) : .guestProtection
                    }
                    let e = PPCTLBEntry(lpid: lpid, vpn: vpn, gfn: HPT.pfn(grpte), pfn: HPT.pfn(r), writable: HPT.isWritable(r), slot: i, generation: gen)
                    tlb.insert(e)
                    hpt.orR(i, HPT.referenced | (write ? HPT.changed : 0))
                    oracle.access(vcpu: vcpu.id, core: core, e, write: write, via: "an HPT walk")
                    return .done
                }
                return .noHPTE
            }
            switch outcome {
            case .done, .guestProtection: return true
            case .noHPTE: return false
            case .retry: continue
            case .hostFault(let slot, let v, let r): pageFault(vcpu, slot: slot, seen: (v, r), write: write)
            }
        }
        return true
    }

    /// kvmppc_book3s_hv_page_fault(): re-read the HPTE the real-mode handler
    /// (kvmppc_hpte_hv_fault()) found, `seen`, and give up if it changed; fault the
    /// page in with get_user_pages_fast(); then, under the HPTE lock and the gfn's
    /// rmap lock, make the HPTE valid unless it changed meanwhile or
    /// `mmu_notifier_retry()` says an invalidation ran. The page reference is
    /// dropped at the end (the HPTE holds none).
    func pageFault(_ vcpu: PPCVCPU, slot: Int, seen: (v: UInt64, r: UInt64), write: Bool) {
        count(.hpteFaults)
        hpt.lock(slot)
        let hv = hpt.v(slot) & ~HPT.hvlock, hr = hpt.r(slot), grpte = hpt.guestRpte(slot)
        hpt.unlock(slot, hv)
        guard hv == seen.v, hr == seen.r else { return }           // changed: re-execute the instruction
        let gfn = HPT.pfn(grpte)
        guard let hva = kvm.memslots.gfnToHva(gfn) else { return }
        let mmuSeq = kvm.mmuNotifierSeq
        smp_rmb()
        let writing = write && HPT.isWritable(grpte)
        guard let (pfn, hostWritable) = kvm.hostMM.getUserPage(hva, write: writing) else { return }
        defer { kvm.hostMM.pages.put(pfn) }                         // put_page()
        var r = HPT.makeR(pfn: pfn, writable: HPT.isWritable(grpte))
        if HPT.isWritable(r) && !hostWritable { r = HPT.makeReadonly(r) }
        hpt.lock(slot)
        guard hpt.v(slot) & ~HPT.hvlock == hv, hpt.r(slot) == hr, hpt.guestRpte(slot) == grpte else {
            hpt.unlock(slot, hpt.v(slot))                            // changed under us: let the guest retry
            return
        }
        let newV = (hv & ~HPT.absent) | HPT.valid
        rmap.lock(gfn)
        if kvm.mmuNotifierRetry(mmuSeq) {
            rmap.unlock(gfn)
            hpt.unlock(slot, hpt.v(slot))
            engine.cover(Self.markFaultRetry)
            engine.event("vcpu\(vcpu.id): HPTE fault on \(slot): mmu_notifier_retry, guest retries")
            return
        }
        if hpt.v(slot) & HPT.valid != 0 {
            // Previously valid (read-only upgrade): invalidate it first.
            rmap.unlock(gfn)
            hpt.setV(slot, hpt.v(slot) | HPT.absent)
            invalidateHPTE(slot)
            r |= hpt.r(slot) & (HPT.referenced | HPT.changed)
        } else {
            rmap.add(gfn, slot: slot)
            rmap.unlock(gfn)
        }
        hpt.setR(slot, r)
        oracle.newTranslation(slot, fresh: false)
        hpt.unlock(slot, newV)
        engine.cover(Self.markFault)
        engine.event("vcpu\(vcpu.id): HPTE fault: HPTE \(slot) valid -> pfn \(pfn)\(HPT.isWritable(r) ? "" : " read-only")")
    }

    // MARK: - MMU-notifier hooks (book3s_64_mmu_hv.c); kvm->mmu_lock held

    /// kvm_unmap_rmapp(): for each HPTE on the gfn's chain: unlink it, and if it
    /// was valid mark it ABSENT and invalidate it globally (kvmppc_invalidate_hpte).
    func unmapRmapp(_ gfn: Int) {
        while true {
            rmap.lock(gfn)
            guard let i = rmap.first(gfn) else { rmap.unlock(gfn); return }
            // Never spin on the HPTE lock holding the rmap lock.
            if !hpt.tryLock(i) {
                rmap.unlock(gfn)
                engine.waitUntil("kvm_unmap_rmapp:hpte_locked") { [hpt] in hpt.v(i) & HPT.hvlock == 0 }
                continue
            }
            rmap.remove(gfn, slot: i)
            rmap.unlock(gfn)
            if hpt.v(i) & HPT.valid != 0 && HPT.pfn(hpt.guestRpte(i)) == gfn {
                hpt.setV(i, hpt.v(i) | HPT.absent)
                invalidateHPTE(i)
                let rc = hpt.r(i) & (HPT.referenced | HPT.changed)
                if rc & HPT.referenced != 0 { rmap.lock(gfn); rmap.setReferenced(gfn); rmap.unlock(gfn) }
                engine.cover(Self.markUnmap)
                engine.event("kvm_unmap_rmapp(gfn \(gfn)): HPTE \(i) absent")
            }
            hpt.unlock(i, hpt.v(i))
        }
    }

    public func unmapHvaRange(_ range: Range<Int>) -> Bool {
        for hva in range { if let gfn = kvm.memslots.hvaToGfn(hva) { unmapRmapp(gfn) } }
        return false   // the HPTEs were invalidated with tlbie already
    }

    /// kvm_set_spte_hva_hv(): kvm_handle_hva(kvm, hva, kvm_unmap_rmapp).
    public func setSpteHva(_ hva: Int, _ pte: PTE) {
        if let gfn = kvm.memslots.hvaToGfn(hva) { unmapRmapp(gfn) }
    }

    /// kvm_age_rmapp(): clear the rmap's referenced bit and the R bit of every
    /// referenced valid HPTE on the chain (kvmppc_clear_ref_hpte(): tlbie).
    public func ageHva(_ range: Range<Int>) -> Bool {
        var young = false
        for hva in range {
            guard let gfn = kvm.memslots.hvaToGfn(hva) else { continue }
            retry: while true {
                rmap.lock(gfn)
                if rmap.testAndClearReferenced(gfn) { young = true }
                for i in rmap.slots(gfn) where hpt.r(i) & HPT.referenced != 0 {
                    if !hpt.tryLock(i) {
                        rmap.unlock(gfn)
                        engine.waitUntil("kvm_age_rmapp:hpte_locked") { [hpt] in hpt.v(i) & HPT.hvlock == 0 }
                        continue retry
                    }
                    if hpt.v(i) & HPT.valid != 0 && hpt.r(i) & HPT.referenced != 0 {
                        hpt.setR(i, hpt.r(i) & ~HPT.referenced)
                        tlbie(vpn: HPT.avpn(hpt.v(i)))
                        young = true
                    }
                    hpt.unlock(i, hpt.v(i))
                }
                rmap.unlock(gfn)
                break
            }
        }
        return young
    }

    /// kvm_test_age_rmapp().
    public func testAgeHva(_ hva: Int) -> Bool {
        guard let gfn = kvm.memslots.hvaToGfn(hva) else { return false }
        rmap.lock(gfn)
        defer { rmap.unlock(gfn) }
        if rmap.testAndClearReferenced(gfn) { rmap.setReferenced(gfn); return true }
        return rmap.slots(gfn).contains { hpt.r($0) & HPT.referenced != 0 }
    }

    // MARK: - guest entry (kvmppc_run_core, kvmppc_hv_entry)

    /// The primary thread's TLB flush check in kvmppc_hv_entry (seed 002): if this
    /// core's bit of `need_tlb_flush` is set, clear it (ldarx/andc/stdcx.), then
    /// flush every TLB entry of this LPID on the core. Per core, not per thread.
    func primaryThreadEntry(_ vc: Vcore) {
        count(.vcoreEntries)
        guard variant == .patched, let pcpu = vc.pcpu else { return }
        if clearNeedTLBFlush(pcpu) {
            host.tlbs[pcpu / host.threadsPerCore].flushPartition(lpid: lpid)
            count(.entryFlushes)
            engine.cover(Self.markNeedFlushConsumed)
            engine.event("vcore\(vc.id): need_tlb_flush set for cpu \(pcpu): flush core \(pcpu / host.threadsPerCore)")
        }
    }

    /// Each thread's TLB flush check in the pre-fix kvmppc_hv_entry: index
    /// `r6 = (this cpu & ~3) | (vcpu_id & 3)` ("map as if threads 1:1 p:v");
    /// flush unless this vcpu last ran on r6 and r6 last ran this vcpu.
    func threadEntry(_ vcpu: PPCVCPU) {
        count(.threadEntries)
        guard variant == .preFix, let pcpu = vcpu.vcore.pcpu else { return }
        let thisCPU = pcpu + vcpu.ptid
        let r6 = (thisCPU & ~3) | (vcpu.id & 3)
        if r6 != vcpu.lastCPU || Int(lastVCPU.load(r6)) != vcpu.id {
            vcpu.lastCPU = r6
            lastVCPU.store(r6, UInt64(vcpu.id))
            host.tlbs[thisCPU / host.threadsPerCore].flushPartition(lpid: lpid)
            count(.entryFlushes)
            engine.cover(Self.markLastCPUFlush)
            engine.event("vcpu\(vcpu.id): last_cpu/last_vcpu mismatch on cpu \(thisCPU): flush core \(thisCPU / host.threadsPerCore)")
        }
    }

    /// kvmppc_vcpu_run()'s `vcpus_running` count and the rma_setup_done check
    /// (kvmppc_hv_setup_htab_rma() when the HPT was reset).
    func vcpusRunning(_ delta: Int) {
        if delta > 0 {
            vmWords.add(0, 1)
            smp_mb()
            if vmWords.load(1) == 0 { vmWords.store(1, 1) }
        } else {
            vmWords.sub(0, 1)
        }
    }

    /// kvmppc_alloc_reset_hpt() on an existing HPT (KVM_PPC_ALLOCATE_HTAB):
    /// refused while any vcpu runs; else every HPTE is cleared and every core must
    /// flush before its next guest entry (patched: all `need_tlb_flush` bits;
    /// pre-fix: `last_vcpu[]` filled with an invalid vcpu number). The model also
    /// empties the rmap chains (v3.8 did not; kvmppc_rmap_reset() came later).
    public func allocResetHPT() -> Bool {
        vmWords.store(1, 0)
        smp_mb()
        if vmWords.load(0) != 0 { vmWords.store(1, 1); return false }
        for i in 0..<hpt.npte { oracle.guestInvalidated(i, gen: oracle.generation(i), .remove, local: false, vcpu: 0) }
        hpt.clearAll()
        rmap.clearAll()
        switch variant {
        case .patched: needTLBFlush.store(0, allCPUs)
        case .preFix: for c in 0..<host.cpus { lastVCPU.store(c, 0xffff) }
        }
        engine.event("kvmppc_alloc_reset_hpt(): HPT cleared")
        return true
    }

    // MARK: - vcore placement

    /// The runner places vcore `vc` on a free core (`vc->pcpu` = its thread 0).
    /// Returns false if every core is busy.
    func place(_ vc: Vcore, preferring core: Int) -> Bool {
        for k in 0..<host.cores {
            let c = (core + k) % host.cores
            if host.coreOwner.cas(c, 0, UInt64(vc.id + 1)) {
                vc.words.store(0, UInt64(c * host.threadsPerCore + 1))
                return true
            }
        }
        return false
    }

    func release(_ vc: Vcore) {
        guard let p = vc.pcpu else { return }
        host.coreOwner.store(p / host.threadsPerCore, 0)
    }
}
