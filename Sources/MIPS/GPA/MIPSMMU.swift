// SPDX-License-Identifier: GPL-2.0-only
import KVMCore
import SimExec
import RCU

/// Error returns of the fault path.
public enum MapPageError: Error, Equatable, Sendable {
    /// -EFAULT: no memslot, or a write the host does not allow (handled as MMIO).
    case efault
    /// -ENOMEM: the page-table memory cache could not be topped up.
    case enomem
    /// -EINTR: the run is stopping (the model's stand-in for a pending signal).
    case eintr
}

/// KVM/MIPS GPA MMU (arch/mips/kvm/mmu.c, v4.11 after seed 004, and its pre-fix
/// form): the GPA page table (`kvm->arch.gpa_mm.pgd`), the host CPUs' TLBs, the
/// arch side of the MMU-notifier protocol (`KVMArchMMU`, `MIPSMMU+Notifier.swift`)
/// and the GPA fault handler (`MIPSMMU+Fault.swift`). It attaches the
/// `MMUOracle` that watches its GPA table.
///
/// Locking: every function that touches the GPA table requires
/// `kvm->mmu_lock` and asserts it, as the kernel's do, except
/// `kvmMipsMapPage`, which takes it; the guest's TLB refill walks the table
/// lock-free inside an RCU read section.
public final class MIPSMMU: KVMArchMMU, @unchecked Sendable {
    /// Coverage marks: the fast path found a PTE, the slow path retried,
    /// change_pte installed a PTE.
    public static let markFastPath = CoverageMark("mips: kvm_mips_map_page fast path")
    public static let markRetry = CoverageMark("mips: kvm_mips_map_page mmu_notifier_retry taken")
    public static let markSetSpte = CoverageMark("mips: kvm_set_spte_hva installs a PTE")
    /// The oracles watching a MIPS GPA world.
    public static let oracles: [Oracle] = MMUOracle.oracles + PageTable.oracles

    /// unowned(unsafe): the world keeps the KVM alive as long as its arch MMU (and a
    /// checked unowned reference costs an atomic retain per use on the fault path).
    /// Every use of this field is still a strong copy, retained and released around
    /// the call it makes; the fault path copies it into a local once
    /// (`let kvm = self.kvm`), which took 39 of 56 retains a schedule off
    /// kvm_mips_map_page() (sync-mmu-race, callgrind).
    public unowned(unsafe) let kvm: KVM
    public let variant: SyncMMUVariant
    /// The type of the fault's `mmu_seq` snapshot (`unsigned long` on MIPS; the
    /// mmu-seq-wrap scenario carries x86's old `int` on this fault path).
    public var mmuSeqType = MMUSeqSnapshotType.unsignedLong
    /// Where the fault path marks pages accessed (`--mark-accessed`; the
    /// seed's order unless a world asks for v6.13's).
    public var accessedMarking = AccessedMarking.v411
    /// `kvm.engine`, kept here: fetching it through `kvm` on every fault retains
    /// and releases objects every vcpu shares, and their reference counts then
    /// bounce between cores.
    let engine: SimEngine
    /// `kvm->mmu_lock` (`kvm.mmuLock`), kept here as `engine` is: through the
    /// unowned `kvm` every lock and unlock retained and released the lock.
    public let mmuLock: SpinLock
    /// The GPA page table (kvm->arch.gpa_mm.pgd).
    public let table: PageTable
    /// One TLB per host CPU.
    public let tlbs: [MIPSTLB]
    /// The oracle of the GPA table (attached to the KVM).
    public let oracle: MMUOracle
    /// KVM_MMU_CACHE_MIN_PAGES (3-level tables: 2) and KVM_NR_MEM_OBJS.
    let cacheMinPages: Int
    let cacheMaxPages = 4

    /// The GPA MMU of `kvm`: a `tableLevels`-level GPA table of `tableBits`
    /// index bits per level whose emptied tables are freed as `tableFree`
    /// says, and `hostCPUs` TLBs of `tlbSize` entries.
    public init(kvm: KVM, variant: SyncMMUVariant, hostCPUs: Int, tlbSize: Int, tableBits: Int, tableLevels: Int = 3,
                tableFree: GPATableFree = .rcu) {
        self.kvm = kvm
        self.variant = variant
        engine = kvm.engine
        mmuLock = kvm.mmuLock
        let cap = PageTable.capacity(forPageLimit: kvm.memslots.maxGfn, levels: tableLevels, bitsPerLevel: tableBits)
        table = PageTable(name: "GPA page table", levels: tableLevels, bitsPerLevel: tableBits, capacity: cap, engine: kvm.engine, rcu: kvm.rcu)
        table.freeWithoutGracePeriod = tableFree == .immediate
        table.freeAfterFlush = tableFree == .afterFlush
        tlbs = (0..<hostCPUs).map { MIPSTLB(cpu: $0, size: tlbSize) }
        cacheMinPages = tableLevels - 1
        oracle = MMUOracle(engine: kvm.engine, hostMM: kvm.hostMM, memslots: kvm.memslots, notifier: kvm.notifier, view: GPATableView(table: table))
        kvm.arch = self
        kvm.attach(oracle: oracle)
        kvm.handlesChangePTE = variant.handlesChangePTE
        if variant.registersMMUNotifier { kvm.registerMMUNotifier() }
    }

    // MARK: - GPA table range operations (mmu_lock held)

    /// kvm_mips_flush_gpa_pt(kvm, start_gfn, end_gfn) (arch/mips/kvm/mmu.c,
    /// v4.11): `end_gfn` inclusive. `kvm->mmu_lock` held (lockdep). Unlinked
    /// tables are freed as `--gpa-table-free` says. pre-fix: the GPA PTEs held the
    /// page references, so kvm_mips_flush_gpa_pte() drops each present PTE's
    /// (`kvm_release_pfn_clean(pte_pfn(pte[i]))`, the line the seed deletes);
    /// pre-fix calls it only from memslot deletion and VM teardown, which no
    /// scenario runs.
    @discardableResult
    public func kvmMipsFlushGpaPt(_ startGfn: Int, _ endGfn: Int) -> Bool {
        mmuLock.assertHeld("kvm_mips_flush_gpa_pt()")
        let end = min(endGfn, table.span - 1)
        if variant == .preFix {
            return table.flushRange(startGfn, end, clearCoveredLeaves: true) { [kvm] old in kvm.releasePfnClean(old.pfn) }
        }
        return table.flushRange(startGfn, end, clearCoveredLeaves: true)
    }

    /// kvm_mips_mkold_gpa_pt(). mmu_lock held.
    func kvmMipsMkoldGpaPt(_ startGfn: Int, _ endGfn: Int) -> Bool {
        mmuLock.assertHeld("kvm_mips_mkold_gpa_pt()")
        return table.rangeOp(startGfn, min(endGfn, table.span - 1)) { $0.mkold() }
    }

    /// kvm_mips_mkclean_gpa_pt(). mmu_lock held.
    public func kvmMipsMkcleanGpaPt(_ startGfn: Int, _ endGfn: Int) -> Bool {
        mmuLock.assertHeld("kvm_mips_mkclean_gpa_pt()")
        return table.rangeOp(startGfn, min(endGfn, table.span - 1)) { $0.mkclean() }
    }

    /// kvm_mips_callbacks->flush_shadow_all(), i.e. kvm_vz_flush_shadow_all()
    /// (arch/mips/kvm/vz.c, v4.12): flush every derived mapping (here the host
    /// TLBs, through KVM_REQ_TLB_FLUSH on every vcpu, waiting for the IPI acks);
    /// with `GPATableFree.afterFlush`, then free the tables unlinked before it.
    /// `kvm->mmu_lock` held.
    func flushShadowAll() {
        mmuLock.assertHeld("kvm_vz_flush_shadow_all()")
        kvm.flushRemoteTLBs()
        table.freeFlushedTables()
    }
}

/// The oracle's view of the GPA table: the GPA PTE of a gfn.
final class GPATableView: SecondaryMMUView, @unchecked Sendable {
    let table: PageTable
    init(table: PageTable) { self.table = table }
    func mapping(ofGfn gfn: Int) -> PTE { table.lookup(gfn) }
}
