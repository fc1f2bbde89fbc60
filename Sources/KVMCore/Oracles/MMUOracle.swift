// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// What the oracle needs to see of an architecture's secondary MMU: the entry it
/// holds for a guest frame. The arch MMU that attaches the oracle provides it.
public protocol SecondaryMMUView: AnyObject, Sendable {
    /// The secondary MMU's entry for `gfn` now (`PTE.none` if it maps nothing).
    func mapping(ofGfn gfn: Int) -> PTE
}

/// The invariants of the MMU-notifier contract and of guest memory, checked
/// while the model runs, for any architecture that keeps a gfn -> pfn secondary
/// MMU. The oracle knows nothing about variants: it looks only at host pages,
/// host PTEs, the secondary MMU's entries (`SecondaryMMUView`), the notifier
/// counters, and the guest's own record of what it wrote.
///
/// - I1: once `invalidate_range_start` has returned for an hva, no GPA PTE (nor
///   GVA PTE, nor TLB entry used by the guest) maps its old pfn; the guest never
///   reads or writes a freed pfn, nor a pfn the host no longer maps at that hva.
/// - I2: a GPA PTE is installed only if `mmu_notifier_count == 0` and
///   `mmu_notifier_seq` equals the snapshot taken before the pfn was looked up
///   (today's protocol: no invalidation in progress over its gfn, and
///   `mmu_invalidate_seq` equal to the snapshot; `InvalidationGate`).
/// - I3: the fast path never dirties a PTE that is not writable.
/// - I4: after `clear_flush_young` has aged a page and flushed, the guest's next
///   access to it goes through a fault that makes it young again.
/// - lost-write: a guest write lands in the page the host considers current for
///   that hva, and reading a page back gives what its writer last wrote.
/// - wp-write: the guest never writes a page through a mapping the host has
///   write-protected (KSM, COW, mprotect, writeback's page_mkclean), once the
///   host's notifier for it has returned (v4.11's page_mkclean_one() changes
///   the PTE first and calls invalidate_page after, under the page table lock).
///
/// Calls from the model: the arch's fault path calls `installingMapping` before
/// it installs an entry and `retryTaken` when `mmu_notifier_retry()` sends it
/// back, its guest calls `guestAccess` for every access (with the TLB fill's
/// `agingClock` value) and `recordWrite`/`checkReadBack`; the host mm calls the
/// `HostMMObserver` hooks; the generic `clear_flush_young` callback calls
/// `youngGfns` and `agedWithFlush`.
///
/// Locking: all checks read atomics; the per-gfn records are atomics too.
public final class MMUOracle: HostMMObserver, @unchecked Sendable {
    /// The oracles this checker owns.
    public static let oracles: [Oracle] = [.I1, .I2, .I3, .I4, .lostWrite, .wpWrite, .spuriousRetry, .lostDirtyPage, .pageFlagsAfterFree]
    let engine: SimEngine
    /// The arch's secondary MMU as the oracle sees it (a view onto its table,
    /// holding no reference to the oracle or the KVM: no cycle).
    let view: SecondaryMMUView
    /// The VM's invalidation state (either notifier protocol).
    let notifier: any InvalidationGate
    /// Set when KVM subscribed to the host's MMU notifiers (the I1 state check at
    /// `invalidate_range_start` return and the I4 aging record apply to
    /// subscribers only).
    public var kvmSubscribed = false
    // Read on every guest access by every vcpu thread. Strong `let`s: a method
    // borrows them from `self` without reference counting (an `unowned(unsafe)`
    // or `var` reference is copied, retained and released, around each call).
    let hostMM: HostMM
    let pages: HostPages
    /// `kvm.memslots` (fixed for the VM's life in the model).
    let memslots: Memslots
    /// Per gfn: the aging clock's value when clear_flush_young last aged it.
    private let agedStamp: FrameWords
    /// The aging clock (I4; not kernel state): a TLB fill records its value,
    /// each aging advances it; an entry whose stamp is below a page's aging
    /// stamp was filled before that aging. A fill only reads it, so vcpus filling
    /// their TLBs do not contend on it.
    private let clock = AtomicWords(count: 1)
    private let discardEpoch: FrameWords
    private let lastWritten: FrameWords
    private let lastWrittenEpoch: FrameWords

    /// The oracle of a VM with `memslots` over `hostMM`, whose secondary MMU is
    /// `view` and notifier counters `notifier`; attach it with `KVM.attach(oracle:)`.
    public init(engine: SimEngine, hostMM: HostMM, memslots: Memslots, notifier: any InvalidationGate, view: SecondaryMMUView) {
        self.engine = engine
        self.notifier = notifier
        self.view = view
        self.hostMM = hostMM
        pages = hostMM.pages
        self.memslots = memslots
        let maxGfn = memslots.maxGfn
        agedStamp = FrameWords(count: maxGfn)
        discardEpoch = FrameWords(count: maxGfn)
        lastWritten = FrameWords(count: maxGfn)
        lastWrittenEpoch = FrameWords(count: maxGfn)
    }

    deinit { for w in [agedStamp, discardEpoch, lastWritten, lastWrittenEpoch] { w.free() }; clock.free() }

    /// The aging clock's value, for a TLB fill to record.
    @inline(__always) public var agingClock: UInt64 { clock.load(0) }

    // MARK: - host side

    public func invalidateRangeStartReturned(_ range: Range<Int>) { checkUnmapped(range, after: "invalidate_range_start") }

    /// v4.11's `.invalidate_page` returned: the same promise as a returned
    /// `invalidate_range_start` for the one page (I1).
    public func invalidatePageReturned(hva: Int) { checkUnmapped(hva..<(hva + 1), after: "invalidate_page") }

    private func checkUnmapped(_ range: Range<Int>, after call: StaticString) {
        withoutAccessPoints {
            guard kvmSubscribed else { return }
            for hva in range {
                guard let gfn = memslots.hvaToGfn(hva) else { continue }
                let p = view.mapping(ofGfn: gfn)
                if p.isPresent {
                    engine.report(.I1, "after \(call)(hva \(hex(hva))) returned, GPA PTE for gfn \(gfn) still maps \(p)")
                }
            }
        }
    }

    /// lost-dirty-page: reclaim frees a clean page without writing it only
    /// when the swap copy holds what the page holds (a guest write the page's
    /// dirty state never recorded would be lost here).
    public func droppingClean(hva: Int, pfn: Int, swapCopy: UInt64) {
        withoutAccessPoints {
            let now = pages.content.load(pfn)
            if now != swapCopy {
                let gfn = memslots.hvaToGfn(hva).map { "gfn \($0)" } ?? "no gfn"
                engine.report(.lostDirtyPage, "reclaim drops pfn \(pfn) of hva \(hex(hva)) (\(gfn)) as clean, but it holds \(now & 0xFF_FFFF), not its swap copy's \(swapCopy & 0xFF_FFFF): a write is lost")
            }
        }
    }

    /// page-flags-after-free: KVM sets a page's flags (kvm_set_pfn_dirty(),
    /// kvm_set_pfn_accessed()) only while the page is allocated; `who` names
    /// the caller.
    public func settingPageFlags(pfn: Int, who: StaticString) {
        withoutAccessPoints {
            if !pages.isInUse(pfn) {
                engine.report(.pageFlagsAfterFree, "\(who) on pfn \(pfn), which the host has freed")
            }
        }
    }

    public func contentDiscarded(hva: Int) {

        withoutAccessPoints {
            guard let gfn = memslots.hvaToGfn(hva) else { return }
            discardEpoch.add(gfn, 1)

        }

    }

    // MARK: - KVM side

    /// Called right before the fault path installs `pte` for `gfn` (the GPA
    /// table's set_pte()), mmu_lock held. `mmuSeq` is the snapshot the fault
    /// took (nil: none taken).
    public func installingMapping(gfn: Int, pte: PTE, mmuSeq: UInt64?) {
        withoutAccessPoints {
            // I1 first: a stale pfn is the harmful case; I2 alone is the protocol's
            // (conservative) rule broken without harm yet.
            if let hva = memslots.gfnToHva(gfn), hostMM.currentPfn(hva) != pte.pfn {
                engine.report(.I1, "GPA PTE for gfn \(gfn) installed with pfn \(pte.pfn), but the host maps hva \(hex(hva)) to \(hostMM.currentPfn(hva).map { "pfn \($0)" } ?? "nothing") (stale pfn\(hostMM.pages.isInUse(pte.pfn) ? "" : ", already freed"))")
            }
            if let mmuSeq, let why = notifier.installBlocker(gfn: gfn, mmuSeq: mmuSeq) {
                engine.report(.I2, "GPA PTE for gfn \(gfn) installed (\(pte)) while \(why)")
            }
        }
    }

    /// I3: the fast path is about to mark `pte` dirty.
    public func dirtying(gfn: Int, pte: PTE) {
        withoutAccessPoints {
            if !pte.isWrite {
                engine.report(.I3, "fast path dirtied non-writable GPA PTE for gfn \(gfn) (\(pte))")
            }
        }
    }

    /// Gfns of `range` whose GPA PTE is young (mmu_lock held), before aging.
    func youngGfns(_ range: Range<Int>) -> [Int] {
        withoutAccessPoints {
            guard kvmSubscribed else { return [] }
            return range.compactMap { memslots.hvaToGfn($0) }.filter { view.mapping(ofGfn: $0).isYoung }
        }
    }

    /// clear_flush_young returned (mmu_lock still held): the pages in `wasYoung` that
    /// it made old must not be reached through a TLB entry filled before now.
    func agedWithFlush(_ wasYoung: [Int]) {
        withoutAccessPoints {
            let now = clock.add(0, 1)                           // fills before this have lower stamps
            for gfn in wasYoung where !view.mapping(ofGfn: gfn).isYoung { agedStamp.store(gfn, now) }
        }
    }

    // MARK: - guest side

    /// A fault is about to retry (`mmu_notifier_retry()` said so; `mmu_lock`
    /// held). Oracle `spurious-retry`: a retry is due only to an invalidation
    /// that ran or is running since the snapshot, i.e. `mmu_notifier_count` is
    /// raised or `mmu_notifier_seq` moved; otherwise the fault can retry forever.
    public func retryTaken(vcpu: Int, gfn: Int = 0, snapshotSeq: UInt64) {
        withoutAccessPoints {
            if !notifier.retryJustified(gfn: gfn, mmuSeq: snapshotSeq) {
                engine.report(.spuriousRetry, "vcpu\(vcpu)'s fault retries with no invalidation since its snapshot (mmu_notifier_seq \(snapshotSeq), count 0): it will retry forever")
            }
        }
    }

    /// A guest access through a translation to `pfn` (`via`: where the translation
    /// came from, e.g. "TLB"). `write`: the value written, nil for a read.
    /// `tlbStamp`: the aging clock when the translation was filled (I4).
    public func guestAccess(vcpu: Int, gfn: Int, pfn: Int, write: UInt64?, via: String, tlbStamp: UInt64? = nil) {
        withoutAccessPoints {
            guard let hva = memslots.gfnToHva(gfn) else { return }
            let kind = write == nil ? "read" : "write"
            if !pages.isInUse(pfn) {
                engine.report(.I1, "vcpu\(vcpu) \(kind) of gfn \(gfn) through \(via) used pfn \(pfn), which the host has freed")
                return
            }
            let current = hostMM.currentPfn(hva)
            if current != pfn {
                let cur = current.map { "pfn \($0)" } ?? "no page"
                if write != nil {
                    engine.report(.lostWrite, "vcpu\(vcpu) wrote gfn \(gfn) into pfn \(pfn) through \(via), but the host's page for hva \(hex(hva)) is \(cur): the write is lost")
                } else {
                    engine.report(.I1, "vcpu\(vcpu) read gfn \(gfn) through a stale \(via) translation to pfn \(pfn); the host's page for hva \(hex(hva)) is \(cur)")
                }
                return
            }
            if write != nil {
                let hp = hostMM.pte(hva)
                // Not while v4.11's invalidate_page for the page is on its way
                // (page_mkclean_one() write-protects, then notifies): judged
                // when it returns, as I1 is.
                if hp.isPresent && !hp.isWrite && !hostMM.invalidatePageInProgress(hva) {
                    engine.report(.wpWrite, "vcpu\(vcpu) wrote gfn \(gfn) (pfn \(pfn)) through \(via) although the host write-protected hva \(hex(hva))")
                }
            }
            if let tlbStamp, tlbStamp < agedStamp.load(gfn) {
                engine.report(.I4, "vcpu\(vcpu) \(kind) of gfn \(gfn) used a TLB entry filled before clear_flush_young aged the page: the access was not tracked")
            }
        }
    }

    /// The guest's record of a completed write of `value` to `gfn` (by its only writer).
    public func recordWrite(gfn: Int, value: UInt64) {
        withoutAccessPoints {
            lastWrittenEpoch.store(gfn, discardEpoch.load(gfn))
            lastWritten.store(gfn, value)
        }
    }

    /// The writer of `gfn` read `value` back: it must be what it last wrote, unless
    /// the host discarded the page since.
    public func checkReadBack(vcpu: Int, gfn: Int, value: UInt64) {
        withoutAccessPoints {
            let expected = lastWritten.load(gfn)
            guard expected != 0, discardEpoch.load(gfn) == lastWrittenEpoch.load(gfn) else { return }
            if value != expected {
                engine.report(.lostWrite, "vcpu\(vcpu) read back \(value == HostPages.poison ? "poison" : String(value)) from gfn \(gfn) after writing \(expected)")
            }
        }
    }
}

extension Oracle {
    public static let I1 = Oracle("I1", "once invalidate_range_start has returned for an hva, nothing the guest can use maps its old pfn, and the guest never uses a freed pfn or one the host no longer maps there")
    public static let I2 = Oracle("I2", "a secondary-MMU entry is installed only with no invalidation of it in progress (mmu_notifier_count == 0; today: none in progress over its gfn) and the notifier seq equal to the fault's snapshot")
    public static let I3 = Oracle("I3", "the fast path never dirties an entry that is not writable")
    public static let I4 = Oracle("I4", "after clear_flush_young aged a page and flushed, the guest's next access to it is tracked (it faults and makes the page young again)")
    public static let lostWrite = Oracle("lost-write", "a guest write lands in the page the host considers current for that hva, and a page reads back what its writer last wrote")
    public static let wpWrite = Oracle("wp-write", "the guest never writes a page through a mapping the host has write-protected (KSM, COW, mprotect, writeback's page_mkclean) once the host's notifier for it has returned")
    public static let spuriousRetry = Oracle("spurious-retry", "a fault retries only because of an invalidation that ran or is running since its snapshot")
    public static let lostDirtyPage = Oracle("lost-dirty-page", "a page the guest wrote is written back or kept, never dropped clean: reclaim frees a page without writing it only when its swap copy holds what the page holds")
    public static let pageFlagsAfterFree = Oracle("page-flags-after-free", "KVM sets a page's flags (kvm_set_pfn_dirty(), kvm_set_pfn_accessed()) only while the page is allocated")
}
