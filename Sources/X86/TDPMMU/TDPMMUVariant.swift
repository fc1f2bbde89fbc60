// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The forms of the TDP MMU the scenarios run: `upstream` (the v6.10-era text,
/// every fix below in it) and, for each historical race, the code just before
/// its fix and the fix as written. A race's variants are `upstream` with only
/// that fix's lines in their older form (`TDPMMUCode`), so each pair differs
/// exactly where the fix did; docs/mechanisms/x86-tdp-mmu.md says, race by
/// race, what else the kernel of that time had that the model does not.
public enum TDPMMUVariant: String, ModelVariant {
    /// Every fix below.
    case upstream
    /// T1: zap_gfn_range() with a flush flag of its own per root, lost when it
    /// yields in a later root (1af4a96025b3 .. a835429cda91).
    case yieldFlushPreFix = "yield-flush-pre-fix"
    /// T1 fixed: the pending flush is carried across roots and done before a yield.
    case yieldFlushFixed = "yield-flush-fixed"
    /// T3: the notifier's unmap walks valid roots only, while a fast zap may be
    /// in the middle of an invalid one (b7cccd397f31 .. d62007edf01f).
    case zapAllRootsPreFix = "zap-all-roots-pre-fix"
    /// T3 fixed: the notifier zaps every root, valid or not.
    case zapAllRootsFixed = "zap-all-roots-fixed"
    /// T4: SPTEs written with a plain store under the write lock, even when the
    /// CPU may set their A/D bits meanwhile (2f2fad0897cb .. ba3a6120a4e7).
    case volatileSPTEPreFix = "volatile-spte-pre-fix"
    /// T4 fixed: an xchg for a present leaf with volatile bits.
    case volatileSPTEFixed = "volatile-spte-fixed"
    /// T2, stage 1: NX recovery drops the "flush needed" its TDP MMU zap
    /// returns (29cf0f5007a2 .. 048f49809c52).
    case nxFlushPreFix = "nx-flush-pre-fix"
    /// T2, stage 2: the first fix assigns it (`flush = ...`), so a later zap
    /// that returns false would drop an earlier one's (048f49809c52, with
    /// 33a3164161fc's kvm_tdp_mmu_zap_sp(), .. 315f02c60d94).
    case nxFlushFirstFix = "nx-flush-first-fix"
    /// T2, stage 3: accumulated (`flush |= ...`).
    case nxFlushFixed = "nx-flush-fixed"
    /// T5 (CVE-2022-45869): the TDP MMU's fault, under the read lock, calls
    /// make_mmu_pages_available(), which zaps shadow pages (a2855afc7ee8 .. 47b0c2e4c220).
    case pagesAvailablePreFix = "pages-available-pre-fix"
    /// T5 fixed: only the shadow MMU's fault (under the write lock) recycles shadow pages.
    case pagesAvailableFixed = "pages-available-fixed"

    public static let t1Fix = KernelCommit("a835429cda91", "KVM: x86/mmu: Ensure TLBs are flushed when yielding during GFN range zap", release: "v5.12")
    public static let t3Fix = KernelCommit("d62007edf01f", "KVM: x86/mmu: Zap _all_ roots when unmapping gfn range in TDP MMU", release: "v5.18")
    public static let t4Fix = KernelCommit("ba3a6120a4e7", "KVM: x86/mmu: Use atomic XCHG to write TDP MMU SPTEs with volatile bits", release: "v5.18")
    public static let t5Fix = KernelCommit("47b0c2e4c220", "KVM: x86/mmu: Fix race condition in direct_page_fault", release: "v6.1")
    public static let t2Break = KernelCommit("29cf0f5007a2", "kvm: x86/mmu: NX largepage recovery for TDP MMU", release: "v5.10")
    public static let t2FirstFix = KernelCommit("048f49809c52", "KVM: x86/mmu: Ensure TLBs are flushed for TDP MMU during NX zapping", release: "v5.12")
    public static let t2Fix = KernelCommit("315f02c60d94", "KVM: x86/mmu: preserve pending TLB flush across calls to kvm_tdp_mmu_zap_sp", release: "v5.12")

    public var commit: KernelCommit? {
        switch self {
        case .upstream: return KernelCommit("0089c055b560", "tdp_mmu.c as stored (mmu.c at 56ea38e436ea): every fix modelled", release: "v6.10")
        case .yieldFlushPreFix: return Self.t1Fix.parent
        case .yieldFlushFixed: return Self.t1Fix
        case .zapAllRootsPreFix: return Self.t3Fix.parent
        case .zapAllRootsFixed: return Self.t3Fix
        case .volatileSPTEPreFix: return Self.t4Fix.parent
        case .volatileSPTEFixed: return Self.t4Fix
        case .nxFlushPreFix: return Self.t2FirstFix.parent
        case .nxFlushFirstFix: return Self.t2FirstFix
        case .nxFlushFixed: return Self.t2Fix
        case .pagesAvailablePreFix: return Self.t5Fix.parent
        case .pagesAvailableFixed: return Self.t5Fix
        }
    }
}

/// Where a variant's code differs from upstream's: one field per fix, each
/// with the kernel's older form as a case. Model code branches on these, only
/// at the lines the fix changed.
public struct TDPMMUCode: Sendable, Equatable {
    /// How a range zap over several roots treats a flush pending from an
    /// earlier root (T1, a835429cda91).
    public enum ZapFlush: Sendable { case perRoot, carried }
    /// Which roots the MMU notifier's unmap walks (T3, d62007edf01f).
    public enum UnmapRoots: Sendable { case validOnly, all }
    /// How SPTEs are written with mmu_lock held for write (T4, ba3a6120a4e7).
    public enum VolatileWrites: Sendable { case plainStore, xchgIfVolatile }
    /// Which faults call make_mmu_pages_available() (T5, 47b0c2e4c220).
    public enum PagesAvailable: Sendable { case everyDirectFault, shadowMMUOnly }
    /// How NX recovery keeps the flush its zaps owe (T2).
    public enum NXRecoveryFlush: Sendable { case dropped, assigned, accumulated }
    /// When kvm_faultin_pfn() reads mmu_invalidate_seq: before the pfn
    /// lookup in every kernel; after it only as a planted bug
    /// (`TDPPlantedBug.mmuSeqAfterPfnLookup`, issue 20 class 1).
    public enum FaultinSeqSnapshot: Sendable { case beforePfnLookup, afterPfnLookup }
    /// What handle_changed_spte() does with the Dirty bit of a leaf it
    /// zaps, cleans or remaps: kvm_set_pfn_dirty() in every kernel; dropped
    /// only as a planted bug (`TDPPlantedBug.setPfnDirtyDropped`, issue 20 class 5).
    public enum DirtyHandOver: Sendable { case setPfnDirty, dropped }

    public var zapFlush = ZapFlush.carried
    public var unmapRoots = UnmapRoots.all
    public var volatileSPTEWrites = VolatileWrites.xchgIfVolatile
    public var pagesAvailable = PagesAvailable.shadowMMUOnly
    public var nxRecoveryFlush = NXRecoveryFlush.accumulated
    public var faultinSeqSnapshot = FaultinSeqSnapshot.beforePfnLookup
    public var changedSPTEDirtyHandOver = DirtyHandOver.setPfnDirty

    public init(_ v: TDPMMUVariant) {
        switch v {
        case .upstream, .yieldFlushFixed, .zapAllRootsFixed, .volatileSPTEFixed, .pagesAvailableFixed, .nxFlushFixed: break
        case .nxFlushPreFix: nxRecoveryFlush = .dropped
        case .nxFlushFirstFix: nxRecoveryFlush = .assigned
        case .yieldFlushPreFix: zapFlush = .perRoot
        case .zapAllRootsPreFix: unmapRoots = .validOnly
        case .volatileSPTEPreFix: volatileSPTEWrites = .plainStore
        case .pagesAvailablePreFix: pagesAvailable = .everyDirectFault
        }
    }
}

/// A bug planted in the TDP MMU by a test, not by any kernel: each is one
/// mutation of stress/mutate that the suite's cases must catch (issue 20).
/// Selected through `TDPMMUOptions.plantedBug`, which has no command-line
/// flag; a trace of a planted run records it in its config.
public enum TDPPlantedBug: String, CaseIterable, Codable, Sendable {
    /// kvm_faultin_pfn() reads mmu_invalidate_seq after the pfn lookup, so an
    /// invalidation that runs to its end inside get_user_pages() goes unseen:
    /// the check moved across a step with no named point (class 1).
    case mmuSeqAfterPfnLookup = "mmu-seq-after-pfn-lookup"
    /// handle_changed_spte() skips kvm_set_pfn_dirty() for a dirty leaf it
    /// zaps (or cleans, or remaps): a guest write the host page's dirty state
    /// never hears of, which reclaim drops with the clean page (class 5; the
    /// mutation tdp-set-pfn-dirty-dropped).
    case setPfnDirtyDropped = "set-pfn-dirty-dropped"

    /// The code forms it changes.
    public func plant(in code: inout TDPMMUCode) {
        switch self {
        case .mmuSeqAfterPfnLookup: code.faultinSeqSnapshot = .afterPfnLookup
        case .setPfnDirtyDropped: code.changedSPTEDirtyHandOver = .dropped
        }
    }
}
