// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec
import RCU

/// Variants of the lazy guest-user ASID regeneration around seed 000
/// ("KVM: MIPS: Fix lazy user ASID regenerate for SMP").
public enum ASIDVariant: String, CaseIterable, Sendable, Codable {
    /// Before the commit (v4.10-rc): `kvm_mips_check_asids()` regenerates on the
    /// current CPU only, and `kvm_arch_vcpu_load()` resets `last_user_gasid` when it
    /// finds the user ASID stale.
    case preFix = "pre-fix"
    /// The seed's diff exactly as written: after regenerating, a loop over the
    /// other CPUs zeroes `vcpu->arch.guest_user_asid[cpu]` (the current CPU's entry,
    /// not `[i]`); the `vcpu_load` reset the message says it drops is not in the diff.
    case patched = "patched"
    /// What the commit message describes: zero `guest_user_asid[i]` on the other
    /// CPUs, and no `last_user_gasid` reset in `kvm_arch_vcpu_load()`.
    case patchedIntended = "patched-intended"
    /// v4.11: `kvm_trap_emul_vcpu_reenter()` with the mm's own `cpu_context()` in
    /// place of the per-vcpu ASID arrays (every CPU's user context zeroed, then the
    /// usual staleness check).
    case upstream411 = "upstream-4.11"
    /// Half of the fix: propagate the regeneration to the other CPUs (`[i]`), keep
    /// the `vcpu_load` reset. Leaves hole (b) alone, so it isolates it.
    case propagateOnly = "propagate-only"
    /// The other half: drop the `vcpu_load` reset, do not propagate. Isolates hole (a).
    case noCancelOnly = "no-cancel-only"

    var usesPerVCPUArrays: Bool { self != .upstream411 }

    /// What `kvm_mips_check_asids()` does to the other CPUs' `guest_user_asid[]`
    /// after regenerating on this one.
    enum Propagation { case none, zeroCurrentCPU, zeroOtherCPUs }
    var propagation: Propagation {
        switch self {
        case .preFix, .noCancelOnly, .upstream411: return .none
        case .patched: return .zeroCurrentCPU
        case .patchedIntended, .propagateOnly: return .zeroOtherCPUs
        }
    }

    /// Whether `kvm_arch_vcpu_load()` sets `last_user_gasid` when it regenerates a
    /// stale user ASID (cancelling a pending lazy regeneration everywhere).
    var vcpuLoadResetsLastUserGASID: Bool {
        switch self {
        case .preFix, .patched, .propagateOnly: return true
        case .patchedIntended, .noCancelOnly, .upstream411: return false
        }
    }
}

/// Variants of seed 001 ("KVM: MIPS/MMU: Invalidate GVA PTs on ASID changes"),
/// on top of the v4.11 ASID code.
public enum GVAFlushVariant: String, CaseIterable, Sendable, Codable {
    /// GVA page tables that nothing flushes when the guest ASID changes.
    case preFix = "pre-fix"
    /// The seed: flush the kernel GVA table (KMF_KERN) on a guest kernel EntryHi
    /// ASID change, the user one (KMF_USER) lazily on re-entry to guest user mode.
    case patched = "patched"
}

/// Guest RAM of the trap-and-emulate scenarios: gfn -> host pfn.
///
/// Fixed for now: the trap-and-emulate scenarios do not yet run the host mm
/// events of the SYNC_MMU model. Moving a page needs the whole GPA fault
/// protocol (`kvm_mips_map_page()` with the `mmu_notifier_seq` retry) under the
/// GVA fill path; a shortcut without it showed the seed-004 retry race instead of
/// anything about GVA tables (see the note in docs/mechanisms/gva-page-tables.md).
public final class TrapEmulGuestRAM: @unchecked Sendable {
    private let pfns: AtomicWords
    public let gfns: Int

    public init(gfns: Int) {
        self.gfns = gfns
        pfns = AtomicWords(count: gfns)
        for g in 0..<gfns { pfns.store(g, UInt64(g + 1)) }
    }

    deinit { pfns.free() }

    /// The host pfn backing `gfn` now.
    public func pfn(_ gfn: Int) -> Int { Int(pfns.load(gfn)) }
}

/// The GVA page tables of one vcpu and their allocation caches.
public final class VCPUGVATables: @unchecked Sendable {
    public let kernel: PageTable
    public let user: PageTable
    let kernelCache: MMUMemoryCache
    let userCache: MMUMemoryCache
    public let variant: GVAFlushVariant

    public init(vcpu: Int, variant: GVAFlushVariant, engine: SimEngine, rcu: any RCUDomain) {
        kernel = GVAPageTables.makeTable(name: "vcpu\(vcpu) guest_kernel_mm.pgd", engine: engine, rcu: rcu)
        user = GVAPageTables.makeTable(name: "vcpu\(vcpu) guest_user_mm.pgd", engine: engine, rcu: rcu)
        kernelCache = MMUMemoryCache(table: kernel)
        userCache = MMUMemoryCache(table: user)
        self.variant = variant
    }
}

/// Who filled a TLB entry (the oracle's record, not hardware state).
public enum TLBOwner: Equatable, Sendable, CustomStringConvertible {
    case none
    case guestUser(vcpu: Int, guestASID: Int, gfn: Int)
    case hostProcess(Int)

    public var raw: UInt64 {
        switch self {
        case .none: return 0
        case let .guestUser(v, a, g): return 1 | UInt64(v) << 4 | UInt64(a) << 16 | UInt64(g) << 32
        case let .hostProcess(p): return 2 | UInt64(p) << 4
        }
    }

    public init(raw: UInt64) {
        switch raw & 0xF {
        case 1: self = .guestUser(vcpu: Int((raw >> 4) & 0xFFF), guestASID: Int((raw >> 16) & 0xFFFF), gfn: Int(raw >> 32))
        case 2: self = .hostProcess(Int((raw >> 4) & 0xFFF))
        default: self = .none
        }
    }

    public var description: String {
        switch self {
        case .none: return "nobody"
        case let .guestUser(v, a, g): return "vcpu\(v) guest ASID \(a) (gfn \(g))"
        case let .hostProcess(p): return "host process \(p)"
        }
    }
}

/// MIPS trap-and-emulate guest address translation for one vcpu (arch/mips/kvm
/// mips.c, mmu.c, emulate.c, trap_emul.c, v4.10 and v4.11): the guest's EntryHi
/// ASID and its own TLB, the guest kernel and user host mms with their host
/// ASIDs per CPU, the lazy user-ASID regeneration, vcpu load/put and migration.
///
/// Guest memory: guest process with ASID `a` maps user virtual page `v` to gfn
/// `a * pagesPerProcess + v`, so a translation borrowed from another process
/// lands on another gfn.
///
/// Locking: everything here is touched by the vcpu's own thread while it holds
/// its current host CPU (`cpuLocks[cpu]`), like kernel code running with
/// preemption disabled; oracles read atomics.
public final class TrapEmulVCPU: @unchecked Sendable {
    public let id: Int
    public let variant: ASIDVariant
    public let asids: ASIDAllocator
    public let tlbs: [HostTLB]
    let engine: SimEngine
    public let guestKernelMM: MipsMM
    public let guestUserMM: MipsMM
    /// vcpu->arch.guest_kernel_asid[], guest_user_asid[] (v4.10).
    private let kernelASIDs: AtomicWords
    private let userASIDs: AtomicWords
    /// vcpu->arch.last_user_gasid.
    public private(set) var lastUserGASID: Int = 0
    /// Guest CP0 EntryHi.ASID: the running guest process.
    public private(set) var entryHiASID: Int
    /// KVM_GUEST_KERNEL_MODE(vcpu).
    public private(set) var guestKernelMode = false
    /// vcpu->cpu (the host CPU it is loaded on or will be loaded on next).
    public private(set) var cpu: Int
    public let pagesPerProcess: Int
    /// The emulated guest TLB (vcpu->arch.guest_tlb): (vpn, asid) pairs, FIFO replacement.
    private var guestTLB: [(vpn: Int, asid: Int)] = []
    let guestTLBSize: Int
    /// The GVA page tables (seed 001), or nil for the v4.10 direct host TLB writes.
    public let gva: VCPUGVATables?
    /// vcpu->mode and vcpu->requests.
    public let state: VCPUState
    public let guestRAM: TrapEmulGuestRAM
    /// The GPA side (v4.11 with SYNC_MMU): GVA PTEs are filled from
    /// `kvm_mips_map_page()`; nil: guest RAM is `guestRAM`, fixed.
    public let gpaMMU: MIPSMMU?
    private let gpaCache: MMUMemoryCache?

    public init(id: Int, variant: ASIDVariant, asids: ASIDAllocator, tlbs: [HostTLB], engine: SimEngine,
                state: VCPUState, guestRAM: TrapEmulGuestRAM,
                startASID: Int, pagesPerProcess: Int, guestTLBSize: Int = 4, gva: VCPUGVATables? = nil,
                gpaMMU: MIPSMMU? = nil) {
        self.gpaMMU = gpaMMU
        gpaCache = gpaMMU.map { MMUMemoryCache(table: $0.kvm.gpaTable) }
        self.state = state
        self.guestRAM = guestRAM
        let startCPU = state.cpu
        precondition(gva == nil || variant == .upstream411, "GVA page tables come with the v4.11 ASID code")
        self.gva = gva
        self.id = id
        self.variant = variant
        self.asids = asids
        self.tlbs = tlbs
        self.engine = engine
        guestKernelMM = MipsMM(name: "vcpu\(id) guest_kernel_mm", cpus: asids.cpus)
        guestUserMM = MipsMM(name: "vcpu\(id) guest_user_mm", cpus: asids.cpus)
        kernelASIDs = AtomicWords(count: asids.cpus)
        userASIDs = AtomicWords(count: asids.cpus)
        cpu = startCPU
        entryHiASID = startASID
        lastUserGASID = startASID
        self.pagesPerProcess = pagesPerProcess
        self.guestTLBSize = guestTLBSize
    }

    deinit { kernelASIDs.free(); userASIDs.free() }

    /// The gfn guest process `asid` maps user page `vpn` to.
    public func guestMapping(asid: Int, vpn: Int) -> Int { asid * pagesPerProcess + vpn }
    /// The host pfn behind a gfn now.
    public func pfn(forGfn gfn: Int) -> Int { guestRAM.pfn(gfn) }

    /// Coverage marks: a new host ASID cycle, a lazy guest-user ASID
    /// regeneration, KVM_REQ_TLB_FLUSH handled before guest entry.
    public static let markNewCycle = CoverageMark("mips: new host ASID cycle")
    public static let markLazyRegen = CoverageMark("mips: lazy guest user ASID regeneration")
    public static let markTLBFlushRequest = CoverageMark("mips: KVM_REQ_TLB_FLUSH handled (KMF_GPA flush)")

    var tlb: HostTLB { tlbs[cpu] }

    /// kvm_get_new_mmu_context(mm, cpu, vcpu) (v4.10, arch/mips/kvm/mmu.c).
    func kvmGetNewMMUContext(_ mm: MipsMM) {
        let cycles = asids.newCycles(cpu)
        mm.getNewMMUContext(cpu: cpu, asids: asids, tlb: tlb)
        if asids.newCycles(cpu) != cycles { engine.cover(Self.markNewCycle) }
        engine.event("vcpu\(id): cpu\(cpu) new ASID \(mm.cpuContext(cpu) & asids.asidMask) (version \(mm.cpuContext(cpu) >> asids.bits)) for \(mm.name)")
    }

    // MARK: - load / put / migration

    /// kvm_arch_vcpu_load() (v4.10 mmu.c) / kvm_trap_emul_vcpu_load() (v4.11):
    /// restore the ASIDs on `newCPU`, regenerating stale ones.
    public func kvmArchVCPULoad(_ newCPU: Int) {
        cpu = newCPU
        if variant.usesPerVCPUArrays {
            if asids.isStale(kernelASIDs.load(cpu), cpu: cpu) {
                kvmGetNewMMUContext(guestKernelMM)
                kernelASIDs.store(cpu, guestKernelMM.cpuContext(cpu))
            }
            if asids.isStale(userASIDs.load(cpu), cpu: cpu) {
                let gasid = entryHiASID
                kvmGetNewMMUContext(guestUserMM)
                userASIDs.store(cpu, guestUserMM.cpuContext(cpu))
                if variant.vcpuLoadResetsLastUserGASID {
                    lastUserGASID = gasid      // cancels a pending lazy regeneration (hole b)
                    engine.event("vcpu\(id): vcpu_load on cpu\(cpu): last_user_gasid = \(gasid)")
                }
            }
        } else {
            let mm = guestKernelMode ? guestKernelMM : guestUserMM
            if asids.isStale(mm.cpuContext(cpu), cpu: cpu) { kvmGetNewMMUContext(mm) }
        }
    }

    /// kvm_arch_vcpu_put(). The kernel records `last_sched_cpu` (for timer
    /// migration) and saves guest state; none of that affects ASIDs, so the model
    /// keeps the call only to mark where the vcpu leaves its CPU.
    public func kvmArchVCPUPut() {}

    /// Moves the vcpu thread to another host CPU (the host scheduler's decision);
    /// the next `kvmArchVCPULoad` runs there.
    public func migrate(to newCPU: Int) {
        engine.event("vcpu\(id): migrates cpu\(cpu) -> cpu\(newCPU)")
        cpu = newCPU
    }

    // MARK: - lazy user ASID regeneration before guest entry

    /// kvm_mips_check_asids() (v4.10, arch/mips/kvm/mips.c), or for upstream-4.11
    /// kvm_trap_emul_vcpu_reenter() (arch/mips/kvm/trap_emul.c). Runs before every
    /// guest entry, preemption disabled.
    public func checkASIDs() {
        if variant == .upstream411 {
            kvmTrapEmulCheckRequests()
            let mm: MipsMM
            if guestKernelMode {
                mm = guestKernelMM
            } else {
                mm = guestUserMM
                let gasid = entryHiASID
                if gasid != lastUserGASID {
                    if let gva, gva.variant == .patched {
                        GVAPageTables.kvmMipsFlushGvaPt(gva.user, .user)
                        engine.event("vcpu\(id): reenter: kvm_mips_flush_gva_pt(user_mm->pgd, KMF_USER)")
                    }
                    for i in 0..<asids.cpus { guestUserMM.setCPUContext(i, 0) }
                    lastUserGASID = gasid
                    engine.event("vcpu\(id): reenter: guest ASID now \(gasid): user cpu_context zeroed on every CPU")
                }
            }
            if asids.isStale(mm.cpuContext(cpu), cpu: cpu) { kvmGetNewMMUContext(mm) }
            return
        }
        guard !guestKernelMode else { return }
        let gasid = entryHiASID
        guard gasid != lastUserGASID else { return }
        kvmGetNewMMUContext(guestUserMM)
        userASIDs.store(cpu, guestUserMM.cpuContext(cpu))
        switch variant.propagation {
        case .none:
            break
        case .zeroCurrentCPU:
            for i in 0..<asids.cpus where i != cpu { userASIDs.store(cpu, 0) }    // guest_user_asid[cpu], as written
        case .zeroOtherCPUs:
            for i in 0..<asids.cpus where i != cpu { userASIDs.store(i, 0) }
        }
        lastUserGASID = gasid
        engine.cover(Self.markLazyRegen)
        engine.event("vcpu\(id): check_asids on cpu\(cpu): guest ASID \(gasid) != last_user_gasid: regenerated; guest_user_asid = \(perCPU(userASIDs))")
    }

    /// kvm_trap_emul_check_requests(vcpu, cpu, false) (v4.11 trap_emul.c):
    /// KVM_REQ_TLB_FLUSH flushes both GVA tables (KMF_GPA) and zeroes both mms'
    /// contexts on every CPU, so the staleness check that follows takes new ASIDs.
    func kvmTrapEmulCheckRequests() {
        guard state.checkRequest(VCPUState.reqTLBFlush) else { return }
        engine.cover(Self.markTLBFlushRequest)
        if let gva {
            GVAPageTables.kvmMipsFlushGvaPt(gva.kernel, [.gpa, .kern])
            GVAPageTables.kvmMipsFlushGvaPt(gva.user, [.gpa, .user])
        }
        for i in 0..<asids.cpus {
            guestKernelMM.setCPUContext(i, 0)
            guestUserMM.setCPUContext(i, 0)
        }
        engine.event("vcpu\(id): KVM_REQ_TLB_FLUSH: GVA tables flushed (KMF_GPA), contexts zeroed")
    }

    private func perCPU(_ w: AtomicWords) -> String {
        "[" + (0..<asids.cpus).map { String(w.load($0) & asids.asidMask) + "/v" + String(w.load($0) >> asids.bits) }.joined(separator: ", ") + "]"
    }

    /// The host ASID the guest runs with on this CPU (EntryHi.ASID on guest entry).
    public var hostUserASID: Int {
        let ctx = variant.usesPerVCPUArrays ? userASIDs.load(cpu) : guestUserMM.cpuContext(cpu)
        return Int(ctx & asids.asidMask)
    }

    // MARK: - guest kernel: context switch

    /// The guest kernel switches process: an emulated `mtc0 EntryHi` with a new ASID
    /// (kvm_mips_emulate_CP0(), arch/mips/kvm/emulate.c), in guest kernel mode. The
    /// kernel host ASID is regenerated at once; the user one lazily on re-entry.
    public func guestContextSwitch(to newASID: Int) {
        guestKernelMode = true                                  // exception: guest kernel mode
        engine.point("guest:kernel_mode")
        if entryHiASID != newASID {
            if let gva, gva.variant == .patched {
                GVAPageTables.kvmMipsFlushGvaPt(gva.kernel, .kern)
                engine.event("vcpu\(id): mtc0 EntryHi: kvm_mips_flush_gva_pt(kern_mm->pgd, KMF_KERN)")
            }
            if variant.usesPerVCPUArrays {
                kvmGetNewMMUContext(guestKernelMM)
                kernelASIDs.store(cpu, guestKernelMM.cpuContext(cpu))
                for i in 0..<asids.cpus where i != cpu { kernelASIDs.store(i, 0) }
            } else {
                kvmGetNewMMUContext(guestKernelMM)
                for i in 0..<asids.cpus where i != cpu { guestKernelMM.setCPUContext(i, 0) }
            }
            engine.event("vcpu\(id): guest mtc0 EntryHi: ASID \(entryHiASID) -> \(newASID)")
            entryHiASID = newASID
        }
        guestKernelMode = false                                 // eret to guest user mode
    }

    // MARK: - guest user accesses

    /// A guest user-mode load from virtual page `vpn` of the running process: enter
    /// the guest (check ASIDs), host TLB lookup with the user host ASID, and on a miss
    /// exit to KVM (kvm_mips_handle_tlbmiss), which refills the guest TLB if needed
    /// (the guest's refill handler, emulated tlbwr) and writes the host TLB
    /// (kvm_mips_handle_mapped_seg_tlb_fault, v4.10), then re-enters.
    /// `check` is called with the entry the access used.
    public func guestUserAccess(vpn: Int, check: (TrapEmulVCPU, HostTLB.Entry) -> Void) {
        for _ in 0..<8 {
            checkASIDs()
            engine.point("vcpu:enter_guest")
            guard state.enterGuestMode() else {                 // a request came in: handle it first
                engine.yieldPoint("vcpu_enter_guest:cancelled")
                continue
            }
            let tag = hostUserASID
            if let e = tlb.lookup(tag: tag, vpn: vpn) {
                check(self, e)
                state.exitGuestMode()
                engine.event("vcpu\(id): guest ASID \(entryHiASID) user read of page \(vpn) on cpu\(cpu) (host ASID \(tag)) -> pfn \(e.pfn), filled by \(TLBOwner(raw: e.owner))")
                return
            }
            if let gva {
                // The host TLB refill handler walks the running mm's GVA table.
                let (p, slot) = gva.user.lookupLocklessSlot(vpn, point: "tlb_refill:gva_walk")
                if p.isPresent, let slot {
                    tlb.fill(.init(tag: tag, vpn: vpn, pfn: p.pfn, dirty: false, owner: gva.user.owner(slot: slot)))
                    engine.event("vcpu\(id): TLB refill from GVA PT: (ASID \(tag), page \(vpn)) -> pfn \(p.pfn), filled for \(TLBOwner(raw: gva.user.owner(slot: slot)))")
                    state.exitGuestMode()
                    continue
                }
            }
            state.exitGuestMode()
            engine.point("exit:tlb_miss")
            handleTLBMiss(vpn: vpn, tag: tag)
        }
    }

    /// kvm_mips_handle_tlbmiss() for a guest user address.
    private func handleTLBMiss(vpn: Int, tag: Int) {
        let asid = entryHiASID
        if !guestTLB.contains(where: { $0.vpn == vpn && $0.asid == asid }) {
            // The guest's TLB refill handler runs and writes the guest TLB (tlbwr).
            if guestTLB.count >= guestTLBSize {
                let old = guestTLB.removeFirst()
                // kvm_mips_emulate_tlbwr(): drop the host entry shadowing the replaced one (this CPU only),
                // and (v4.11) its GVA PTEs: kvm_trap_emul_invalidate_gva().
                tlb.invalidate(tag: hostUserASID, vpn: old.vpn)
                if let gva {
                    for t in [gva.kernel, gva.user] { if let s = t.walk(old.vpn, cache: nil) { t.set(slot: s, .none, owner: 0) } }
                }
            }
            guestTLB.append((vpn, asid))
        }
        let gfn = guestMapping(asid: asid, vpn: vpn)
        let owner = TLBOwner.guestUser(vcpu: id, guestASID: asid, gfn: gfn).raw
        if let gpaMMU, let gpaCache, let gva {
            // kvm_mips_handle_mapped_seg_tlb_fault() (v4.11): the GPA PTE from
            // kvm_mips_map_page() (outside mmu_lock afterwards, like the kernel),
            // copied into the GVA PTE; a flush that raced with it reaches this vcpu
            // as KVM_REQ_TLB_FLUSH before it enters the guest again.
            guard case .success(let gpaPTE) = gpaMMU.kvmMipsMapPage(state, cache: gpaCache, gfn: gfn, write: false) else { return }
            engine.point("kvm_mips_handle_mapped_seg_tlb_fault:after_map_page")
            _ = gva.userCache.topup(min: 2, max: 4)
            if let s = gva.user.walk(vpn, cache: gva.userCache) {
                gva.user.set(slot: s, PTE(pfn: gpaPTE.pfn, flags: PTE.present | PTE.young), owner: owner)
            }
            tlb.invalidate(tag: tag, vpn: vpn)
            engine.event("vcpu\(id): TLB miss page \(vpn): GVA PT <- pfn \(gpaPTE.pfn) for guest ASID \(asid), gfn \(gfn)")
            return
        }
        if let gva {
            // kvm_mips_handle_mapped_seg_tlb_fault() (v4.11): write the GVA PTE, then
            // drop the host TLB entry so that the refill handler loads the new one.
            _ = gva.userCache.topup(min: 2, max: 4)
            if let s = gva.user.walk(vpn, cache: gva.userCache) {
                gva.user.set(slot: s, PTE(pfn: pfn(forGfn: gfn), flags: PTE.present | PTE.young), owner: owner)
            }
            tlb.invalidate(tag: tag, vpn: vpn)
            engine.event("vcpu\(id): TLB miss page \(vpn): GVA PT <- pfn \(pfn(forGfn: gfn)) for guest ASID \(asid), gfn \(gfn)")
            return
        }
        tlb.fill(.init(tag: tag, vpn: vpn, pfn: pfn(forGfn: gfn), dirty: false, owner: owner))
        engine.event("vcpu\(id): TLB miss page \(vpn): host TLB cpu\(cpu) <- (ASID \(tag), page \(vpn)) for guest ASID \(asid), gfn \(gfn)")
    }
}

/// A host process that runs on host CPUs between vcpus and uses ASIDs from the same
/// allocator: the source of ASID cycles.
public final class HostProcess: @unchecked Sendable {
    public let id: Int
    public let mm: MipsMM
    public init(id: Int, cpus: Int) {
        self.id = id
        mm = MipsMM(name: "host process \(id)", cpus: cpus)
    }

    /// switch_mm() to this process on `cpu`, then a user access that fills a TLB entry.
    public func run(cpu: Int, asids: ASIDAllocator, tlb: HostTLB, vpn: Int, engine: SimEngine) {
        mm.checkMMUContext(cpu: cpu, asids: asids, tlb: tlb)
        let asid = Int(mm.cpuContext(cpu) & asids.asidMask)
        tlb.fill(.init(tag: asid, vpn: vpn, pfn: 1_000_000 + id, dirty: false, owner: TLBOwner.hostProcess(id).raw))
        engine.event("host process \(id) runs on cpu\(cpu) with ASID \(asid) (version \(mm.cpuContext(cpu) >> asids.bits))")
    }
}
