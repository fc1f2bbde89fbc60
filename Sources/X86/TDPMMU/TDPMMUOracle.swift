// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

extension Oracle {
    /// T1, T2: a zap's TLB flush is due before mmu_lock is dropped.
    public static let staleTLBAfterUnlock = Oracle("stale-tlb-after-unlock", "no vcpu uses a TLB entry of an SPTE that was zapped once the zapper has released mmu_lock: the flush comes first")
    /// T4: the Dirty bit the CPU sets (and the Writable bit fast_page_fault sets) is never dropped.
    public static let lostDirty = Oracle("lost-dirty", "KVM never overwrites an SPTE's Dirty bit (set by the CPU) or Writable bit (set by fast_page_fault) without having read it: a write replaces the value it accounts for")
    /// T3: KVM touches a host page through an SPTE only while the host still maps it there.
    public static let pageUseAfterFree = Oracle("page-use-after-free", "KVM touches a host page through an SPTE (kvm_set_pfn_dirty/accessed) only while the host still maps it at that gfn's hva")
    /// T4's consequence: a page written while logged is reported.
    public static let missedDirtyPage = Oracle("missed-dirty-page", "every page the guest writes after dirty logging was enabled or a harvest returned is reported by the next harvest (or is still in a PML buffer, for the one after)")
    /// T2: the CPU never uses a page-table page after it was freed.
    public static let ptUseAfterFree = Oracle("pt-use-after-free", "the CPU never walks, or sets A/D bits through, a page-table page after it was freed: the TLB flush comes between unlink and free")
}

/// The TDP MMU's own invariants, beside `MMUOracle`'s (which watches the
/// mappings against the host). Judges the modelled system only: SPTE memory,
/// host pages, vcpu TLBs and mmu_lock's releases, never the variant.
///
/// - stale-tlb-after-unlock: every present leaf that is zapped (made
///   non-present, or pointed at another page) gets a record: when, and which
///   actor zapped it and how often that actor had released mmu_lock by then.
///   A TLB entry records when it was filled and from which SPTE. Using an
///   entry whose SPTE was zapped after the fill, once the zapper has released
///   mmu_lock since the zap, is a violation: the flush must come before the unlock.
/// - lost-dirty: a plain store to an SPTE is checked against the memory it
///   overwrites; a Dirty (or Writable) bit there that the writer's snapshot lacks
///   and the new value drops is lost.
/// - page-use-after-free, pt-use-after-free, rcu-use-after-free: reported where
///   the model touches the page or table.
///
/// Locking: records are atomics of the model's own (not kernel memory), read
/// and written without scheduling points.
public final class TDPMMUOracle: @unchecked Sendable {
    public static let oracles: [Oracle] = [.staleTLBAfterUnlock, .lostDirty, .missedDirtyPage, .pageUseAfterFree, .ptUseAfterFree]
    let engine: SimEngine
    let hostMM: HostMM
    let memslots: Memslots
    /// The zap clock: a TLB fill records its value; each zap advances it.
    private let clock = AtomicWords(count: 1)
    /// Per SPTE slot: the clock of its last zap, the zapper's executor slot + 1,
    /// and the zapper's mmu_lock release count at the zap.
    private enum ZapField: Int, CaseIterable { case clock, actor, releases }
    @exclusivity(unchecked) private var zaps: AtomicRecords<ZapField>?

    /// Dirty logging: completed harvests, whether a harvest (or the clear of
    /// logging's start) is under way, the logging period (bumped when logging
    /// starts or stops), and per gfn `period << 32 | harvest`: the harvest that
    /// must report a write (0: none owed), in which period.
    private enum DirtyField: Int, CaseIterable { case epoch, busy, period }
    private let dirty = AtomicRecords<DirtyField>(count: 1)
    @exclusivity(unchecked) private var owedBy: AtomicWords?

    init(engine: SimEngine, hostMM: HostMM, memslots: Memslots) {
        self.engine = engine
        self.hostMM = hostMM
        self.memslots = memslots
    }

    deinit { clock.free(); zaps?.free(); dirty.free(); owedBy?.free() }

    /// Sizes the per-slot records (the arena's slots) and the per-gfn ones.
    /// Before any actor runs.
    func prepare(slots: Int) {
        zaps = AtomicRecords(count: slots)
        owedBy = AtomicWords(count: max(memslots.maxGfn, 1))
    }

    // MARK: - dirty logging

    /// The logging period now: read by a write before it checks that its slot
    /// logs, so that a write racing with logging's stop is not owed to the next period.
    var dirtyPeriod: UInt64 { dirty.peek(0, .period) }

    /// A write to a logged page completed (`period`: read before the slot's
    /// logging flag): unless a harvest is under way, the next harvest owes it.
    func loggedPageWritten(_ gfn: Int, period: UInt64) {
        guard let owedBy, dirty.peek(0, .busy) == 0 else { return }
        let cur = owedBy.peek(gfn)
        if cur == 0 || cur >> 32 != period { owedBy.store(gfn, period << 32 | (dirty.peek(0, .epoch) + 1)) }
    }

    /// A harvest, or the Dirty-bit clear of logging's start, begins.
    func dirtyPassStarts() { dirty.store(0, .busy, 1) }

    /// Logging's start returned: writes from now on are owed by the next harvest.
    func dirtyLoggingEnabled() {
        dirty.add(0, .period, 1)
        dirty.store(0, .busy, 0)
    }

    /// Logging stopped: nothing more is owed.
    func dirtyLoggingDisabled() { dirty.add(0, .period, 1) }

    /// Harvest number `epoch + 1` returned with `taken`: every write it owes was
    /// taken, or is still on its way (in the bitmap after its xchg, or in a
    /// vcpu's PML buffer: owed by the next one).
    func dirtyHarvestReturned(_ taken: [Int], pending: (Int) -> Bool, state: (Int) -> String) {
        guard let owedBy else { return }
        let k = dirty.peek(0, .epoch) + 1, period = dirty.peek(0, .period)
        withoutAccessPoints {
            for g in taken { owedBy.store(g, 0) }
            for g in 0..<owedBy.count {
                let entry = owedBy.peek(g), owed = entry & 0xFFFF_FFFF
                guard owed != 0, entry >> 32 == period, owed <= k else { continue }
                if pending(g) { owedBy.store(g, period << 32 | (k + 1)); continue }
                owedBy.store(g, 0)
                engine.report(.missedDirtyPage, "KVM_GET_DIRTY_LOG #\(k) did not report gfn \(g), which the guest wrote after the previous harvest (or logging's start) returned: the write will never be copied (\(state(g)))")
            }
        }
        dirty.store(0, .epoch, k)
        dirty.store(0, .busy, 0)
    }

    // MARK: - zaps and TLB entries

    /// The clock a TLB fill records.
    @inline(__always) var fillClock: UInt64 { clock.peek(0) }

    /// A present leaf at `sptep` was zapped or repointed by the caller, who
    /// holds mmu_lock.
    func leafZapped(sptep: Int, gfn: Int, old: SPTE, mmuLock: RWLock) {
        guard let zaps else { return }
        let now = clock.add(0, 1)
        zaps.store(sptep, .actor, UInt64(mmuLock.callerSlot + 1))
        zaps.store(sptep, .releases, mmuLock.releaseCount())
        zaps.store(sptep, .clock, now)
    }

    /// A vcpu uses a TLB entry for `gfn` filled at `filledAt` from the SPTE at
    /// `sptep`: report if that SPTE was zapped since and its zapper has dropped
    /// mmu_lock since the zap without the entry being flushed.
    func tlbEntryUsed(vcpu: Int, gfn: Int, sptep: Int, filledAt: UInt64, mmuLock: RWLock) {
        guard let zaps else { return }
        let z = zaps.peek(sptep, .clock)
        guard z > filledAt else { return }
        let actor = Int(zaps.peek(sptep, .actor)) - 1
        guard actor >= 0, mmuLock.releaseCount(ofExecutor: actor) > zaps.peek(sptep, .releases) else { return }
        engine.report(.staleTLBAfterUnlock, "vcpu\(vcpu) used its TLB entry for gfn \(gfn) after the SPTE it came from was zapped and \(engine.executors[actor].name) released mmu_lock without flushing TLBs")
    }

    // MARK: - SPTE writes

    /// A plain store of `new` over what the writer believes is `believed`
    /// (mmu_lock held for write; `words` is the SPTE memory). Checks the bits
    /// the CPU or fast_page_fault() may have set meanwhile.
    func plainSPTEWrite(sptep: Int, believed: SPTE, new: SPTE, level: Int, words: AtomicWords) {
        let actual = SPTE(raw: words.peek(sptep))
        guard actual.isShadowPresent, actual.isLast(level: level), actual.pfn == believed.pfn else { return }
        if actual.isDirty && !believed.isDirty && !(new.isDirty && new.pfn == actual.pfn) {
            engine.report(.lostDirty, "an SPTE mapping pfn \(actual.pfn) was overwritten with \(new) from a snapshot \(believed), but the CPU had set its Dirty bit (\(actual)): the write is never accounted")
        } else if actual.isWritable && !believed.isWritable && !new.isWritable && believed.isMMUWritable {
            engine.report(.lostDirty, "an SPTE mapping pfn \(actual.pfn) was overwritten with \(new) from a snapshot \(believed), but fast_page_fault had made it writable (\(actual)): the guest may keep a writable TLB entry nothing will flush")
        }
    }

    // MARK: - pages and tables

    /// KVM marks the page of `gfn`'s SPTE dirty or accessed.
    func kvmTouchesPage(_ pfn: Int, gfn: Int, what: StaticString, dirty: Bool) {
        withoutAccessPoints {
            guard let hva = memslots.gfnToHva(gfn) else { return }
            guard hostMM.currentPfn(hva) != pfn else { return }
            let freed = !hostMM.pages.isInUse(pfn)
            engine.report(.pageUseAfterFree, "\(what)(pfn \(pfn)) for gfn \(gfn), which the host no longer maps at hva \(hex(hva))\(freed ? ": the page is freed" : " (the page was freed and reused, or is only in the swap cache)")")
        }
    }

    /// A KVM walker (tdp_iter, under RCU) read a freed table.
    func walkerReadFreedTable(_ t: Int, level: Int, gfn: Int, who: String) {
        engine.report(.rcuUseAfterFree, "\(who) walking towards gfn \(gfn) read level-\(level) table \(t) after it was freed (no grace period between unlink and free)")
    }

    /// The CPU walked or set A/D bits through a freed table.
    func hardwareUsedFreedTable(_ t: Int, vcpu: Int, gfn: Int, how: String) {
        engine.report(.ptUseAfterFree, "vcpu\(vcpu)'s CPU \(how) table \(t) (for gfn \(gfn)) after it was freed: no TLB flush between its unlink and its free")
    }
}
