// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec
import RCU

/// MIPS trap-and-emulate guest address translation for one vcpu (arch/mips/kvm
/// mips.c, mmu.c, emulate.c, trap_emul.c, v4.10 and v4.11): the guest's EntryHi
/// ASID and its own TLB, the guest kernel and user host mms with their host
/// ASIDs per CPU, the lazy user-ASID regeneration, vcpu load/put and migration.
///
/// Guest memory (`TrapEmulGuestLayout`): guest process with ASID `a` maps each of
/// its useg and kseg2/3 pages to a gfn of its own, so a translation borrowed from
/// another process lands on another gfn; kseg0 maps the same gfns in every process.
///
/// Locking: everything here is touched by the vcpu's own thread while it holds
/// its current host CPU (`cpuLocks[cpu]`), like kernel code running with
/// preemption disabled; oracles read atomics.
public final class TrapEmulVCPU: @unchecked Sendable {
    public let id: Int
    public let variant: ASIDVariant
    public let asids: ASIDAllocator
    public let tlbs: [MIPSTLB]
    let engine: SimEngine
    public let guestKernelMM: MipsMM
    public let guestUserMM: MipsMM
    /// vcpu->arch.guest_kernel_asid[], guest_user_asid[] (v4.10).
    let kernelASIDs: AtomicWords
    let userASIDs: AtomicWords
    /// vcpu->arch.last_user_gasid.
    public internal(set) var lastUserGASID: Int = 0
    /// Guest CP0 EntryHi.ASID: the running guest process.
    public internal(set) var entryHiASID: Int
    /// KVM_GUEST_KERNEL_MODE(vcpu).
    public internal(set) var guestKernelMode = false
    /// vcpu->cpu (the host CPU it is loaded on or will be loaded on next).
    public internal(set) var cpu: Int
    /// The host CPU and guest ASID the vcpu was created with (`resetForReuse`).
    let startCPU: Int
    let startASID: Int
    /// The low useg pages of each guest process (the layout adds the last useg page
    /// and the kseg0 and kseg2/3 pages).
    public let pagesPerProcess: Int
    /// The pages the guest touches and the gfns they map.
    public let layout: TrapEmulGuestLayout
    /// Test-only: a class-2 bug planted by a test scenario; nil (the kernel's code) otherwise.
    public internal(set) var plantedBug: TrapEmulPlantedBug?
    /// The emulated guest TLB (vcpu->arch.guest_tlb): (vpn, asid) pairs, FIFO replacement.
    var guestTLB: [(vpn: Int, asid: Int)] = []
    let guestTLBSize: Int
    /// The GVA page tables (seed 001), or nil for the v4.10 direct host TLB writes.
    public let gva: VCPUGVATables?
    /// vcpu->mode and vcpu->requests.
    public let state: VCPUState
    public let guestRAM: TrapEmulGuestRAM
    /// The GPA side (v4.11 with SYNC_MMU): GVA PTEs are filled from
    /// `kvm_mips_map_page()`; nil: guest RAM is `guestRAM`, fixed.
    public let gpaMMU: MIPSMMU?
    let gpaCache: MMUMemoryCache?
    /// The per-CPU run locks of the world (`cpuLocks`: holding one stands for
    /// running on that CPU with preemption disabled), for lockdep assertions;
    /// nil in unit tests that drive the vcpu without them.
    public var runLocks: [SpinLock]?

    public init(id: Int, variant: ASIDVariant, asids: ASIDAllocator, tlbs: [MIPSTLB], engine: SimEngine,
                state: VCPUState, guestRAM: TrapEmulGuestRAM,
                startASID: Int, pagesPerProcess: Int, guestTLBSize: Int = 4, gva: VCPUGVATables? = nil,
                gpaMMU: MIPSMMU? = nil) {
        self.gpaMMU = gpaMMU
        gpaCache = gpaMMU.map { MMUMemoryCache(table: $0.table) }
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
        kernelASIDs = AtomicWords(count: asids.cpus, kernel: true)
        userASIDs = AtomicWords(count: asids.cpus, kernel: true)
        cpu = startCPU
        self.startCPU = startCPU
        entryHiASID = startASID
        lastUserGASID = startASID
        self.startASID = startASID
        self.pagesPerProcess = pagesPerProcess
        layout = TrapEmulGuestLayout(lowUserPages: pagesPerProcess)
        self.guestTLBSize = guestTLBSize
    }

    deinit { kernelASIDs.free(); userASIDs.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): the vcpu's state
    /// outside `AtomicWords` as `init` left it: on its first host CPU, running
    /// guest process `startASID` (EntryHi and last_user_gasid) in guest user
    /// mode, an empty guest TLB, and empty memory caches (the GPA one and the
    /// GVA tables'; the tables they held go back to their tables' allocators,
    /// which the world then resets, so call this before its
    /// `WorldMemory.restore()`). The host ASID arrays, the guest mms'
    /// contexts and the GVA tables' entries are words the world's
    /// `WorldMemory` restores; the variant, the layout and a planted bug are
    /// set at build and never change.
    public func resetForReuse() {
        withoutAccessPoints {
            gpaCache?.freeAll()
            gva?.kernelCache.freeAll()
            gva?.userCache.freeAll()
        }
        cpu = startCPU
        entryHiASID = startASID
        lastUserGASID = startASID
        guestKernelMode = false
        guestTLB.removeAll(keepingCapacity: true)
    }

    /// The gfn guest process `asid` maps page `vpn` to (kseg0: the same in every process).
    public func guestMapping(asid: Int, vpn: Int) -> Int { layout.gfn(asid: asid, vpn: vpn) }
    /// The host pfn behind a gfn now.
    public func pfn(forGfn gfn: Int) -> Int { guestRAM.pfn(gfn) }

    /// Coverage marks: a new host ASID cycle, a lazy guest-user ASID
    /// regeneration, KVM_REQ_TLB_FLUSH handled before guest entry.
    public static let markNewCycle = CoverageMark("mips: new host ASID cycle")
    public static let markLazyRegen = CoverageMark("mips: lazy guest user ASID regeneration")
    public static let markTLBFlushRequest = CoverageMark("mips: KVM_REQ_TLB_FLUSH handled (KMF_GPA flush)")
    /// Guest kernel-mode TLB faults KVM handles: kseg0 (kvm_mips_handle_kseg0_tlb_fault)
    /// and a mapped segment (useg or kseg2/3) through the guest TLB in kernel mode.
    public static let markKernelKseg0Fault = CoverageMark("mips: guest kernel-mode kseg0 TLB fault")
    public static let markKernelMappedFault = CoverageMark("mips: guest kernel-mode mapped-segment (kseg2/3) TLB fault")
    /// A guest access to the last useg page (0x3ffff000, the KMF_USER end) through a translation.
    public static let markUsegLastPage = CoverageMark("mips: access to the last useg page (KMF_USER end)")

    /// Test-only: plants a class-2 bug (see `TrapEmulPlantedBug`).
    public func plant(_ bug: TrapEmulPlantedBug?) { plantedBug = bug }

    var tlb: MIPSTLB { tlbs[cpu] }

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
}
