// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// `struct kvm_gfn_range`: the part of one memslot an hva range covers, in
/// guest frames, handed to an arch hook.
public struct KVMGFNRange: Sendable, Equatable {
    public var slot: Memslot
    public var start: UInt64
    public var end: UInt64
    /// Whether the hook may sleep (drop mmu_lock and reschedule).
    public var mayBlock: Bool
    public var gfns: Range<UInt64> { start..<end }

    public init(slot: Memslot, start: UInt64, end: UInt64, mayBlock: Bool) {
        self.slot = slot
        self.start = start
        self.end = end
        self.mayBlock = mayBlock
    }
}

/// The arch hooks today's generic notifier code calls (kvm_unmap_gfn_range(),
/// kvm_age_gfn(), kvm_test_age_gfn() and kvm_flush_remote_tlbs()), each with
/// `kvm->mmu_lock` held for write. The first three return whether a TLB flush
/// is needed (or, for the age hooks, whether a page was young).
public protocol KVMGFNRangeArch: AnyObject, Sendable {
    func unmapGFNRange(_ range: KVMGFNRange) -> Bool
    func ageGFN(_ range: KVMGFNRange) -> Bool
    func testAgeGFN(_ range: KVMGFNRange) -> Bool
    func flushRemoteTLBs()
}

/// The MMU-notifier callbacks of virt/kvm/kvm_main.c as they are today
/// (CONFIG_KVM_GENERIC_MMU_NOTIFIER, text read: v6.14-era master), beside the
/// v4.9-v4.12 form in `KVM+MMUNotifier.swift`. The difference that matters:
/// every callback finds the memslots an hva range intersects first and takes
/// `mmu_lock` (for write: KVM_MMU_LOCK() where KVM_HAVE_MMU_RWLOCK) only if
/// there is one; invalidate_range_start bumps `mn_active_invalidate_count`
/// before, and invalidation state is gfn-based (`MMUInvalidateState`).
///
/// Locking: `mn_invalidate_lock` (a spinlock) guards
/// `mn_active_invalidate_count`; `mmu_lock` is taken inside it never.
/// kvm->srcu, which __kvm_handle_hva_range() takes around its memslot
/// lookup, is not taken here: memslots never change range in the model (a
/// memslot update only flips its dirty-logging flag, and waits on
/// `ModernKVM.srcu` for vcpus), so the lookup cannot race with a swap.
public final class KVMMMUNotifier: MMUNotifierSubscriber, @unchecked Sendable {
    public let engine: SimEngine
    public let mmuLock: RWLock
    public let memslots: Memslots
    public let invalidate: MMUInvalidateState
    /// kvm->mn_invalidate_lock and kvm->mn_active_invalidate_count.
    public let mnInvalidateLock: SpinLock
    private let activeCount = AtomicWords(count: 1, kernel: true)
    /// The arch (strong, as `KVM.arch`; the arch holds this notifier unowned).
    public var arch: (any KVMGFNRangeArch)!
    /// The oracle of the VM's secondary MMU (its I4 record of clear_flush_young).
    /// Unowned: the VM owns it and outlives this notifier's use of it.
    public unowned(unsafe) var oracle: MMUOracle?

    public init(engine: SimEngine, mmuLock: RWLock, memslots: Memslots) {
        self.engine = engine
        self.mmuLock = mmuLock
        self.memslots = memslots
        invalidate = MMUInvalidateState(engine: engine, mmuLock: mmuLock)
        mnInvalidateLock = SpinLock("spin_lock(&kvm->mn_invalidate_lock)", engine: engine)
    }
    deinit { activeCount.free() }

    public var mnActiveInvalidateCount: UInt64 { activeCount.load(0) }

    /// `struct kvm_mmu_notifier_range`: hva pages `[start, end)`, the hook per
    /// memslot (nil: kvm_null_fn), what to do once the lock is taken.
    public struct Range {
        public var start: Int
        public var end: Int
        public var handler: ((KVMGFNRange) -> Bool)?
        public var onLock: (() -> Void)?
        public var flushOnRet: Bool
        public var mayBlock: Bool
        /// The model's own: runs after the flush, before mmu_lock is dropped
        /// (an oracle's record that must be made under the lock).
        public var beforeUnlock: (() -> Void)? = nil
    }

    /// __kvm_handle_hva_range(): for each memslot intersecting the range (in
    /// hva order, kvm_for_each_memslot_in_hva_range()), the handler on the
    /// slot's part as gfns; mmu_lock is taken for write at the first slot
    /// found (and `onLock` run), never if none is. A flush follows if asked
    /// and any handler wanted one. Returns (ret, found_memslot).
    @discardableResult
    public func handleHVARange(_ range: Range) -> (ret: Bool, foundMemslot: Bool) {
        var ret = false, found = false
        if range.end <= range.start { engine.kvmWarnOn(true, "__kvm_handle_hva_range(): end <= start"); return (false, false) }
        if range.onLock == nil && range.handler == nil { engine.kvmWarnOn(true, "__kvm_handle_hva_range(): no handler"); return (false, false) }
        for slot in memslots.slots(intersectingHVAs: range.start..<range.end) {
            let hvaStart = max(range.start, slot.userspaceAddr)
            let hvaEnd = min(range.end, slot.userspaceAddr + slot.npages)
            // In pages, hva_to_gfn_memslot(hva_end + PAGE_SIZE - 1) is the page after the last.
            let gfnRange = KVMGFNRange(slot: slot, start: UInt64(slot.hvaToGfn(hvaStart)), end: UInt64(slot.hvaToGfn(hvaEnd)),
                                       mayBlock: range.mayBlock)
            if !found {
                found = true
                mmuLock.writeLock()
                range.onLock?()
                guard range.handler != nil else { break }
            }
            if let h = range.handler { ret = h(gfnRange) || ret }
        }
        if range.flushOnRet && ret { arch.flushRemoteTLBs() }
        if found { range.beforeUnlock?(); mmuLock.writeUnlock() }
        return (ret, found)
    }

    /// kvm_mmu_unmap_gfn_range(): the range is added before the zap, under the
    /// same write hold as kvm_mmu_invalidate_begin().
    func unmapGFNRange(_ r: KVMGFNRange) -> Bool {
        invalidate.rangeAdd(r.gfns)
        return arch.unmapGFNRange(r)
    }

    /// kvm_mmu_notifier_invalidate_range_start(). (The gfn_to_pfn caches it
    /// invalidates first and kvm_arch_guest_memory_reclaimed() are not modelled.)
    public func invalidateRangeStart(hvas: Swift.Range<Int>, mayBlock: Bool = true) {
        // Prevents memslot changes between start and end, so that both find
        // the same slots and in_progress stays balanced.
        mnInvalidateLock.lock()
        activeCount.add(0, 1)
        mnInvalidateLock.unlock()
        handleHVARange(Range(start: hvas.lowerBound, end: hvas.upperBound, handler: { [unowned self] in unmapGFNRange($0) },
                             onLock: { [invalidate] in invalidate.begin() }, flushOnRet: true, mayBlock: mayBlock))
    }

    /// kvm_mmu_notifier_invalidate_range_end().
    public func invalidateRangeEnd(hvas: Swift.Range<Int>, mayBlock: Bool = true) {
        handleHVARange(Range(start: hvas.lowerBound, end: hvas.upperBound, handler: nil,
                             onLock: { [invalidate] in invalidate.end() }, flushOnRet: false, mayBlock: mayBlock))
        mnInvalidateLock.lock()
        let count = activeCount.load(0)
        engine.kvmWarnOn(count == 0, "kvm_mmu_notifier_invalidate_range_end(): mn_active_invalidate_count is 0")
        if count > 0 { activeCount.sub(0, 1) }
        mnInvalidateLock.unlock()
        // The memslot updater waiting for the count to reach 0 (rcuwait) is not modelled.
    }

    /// kvm_mmu_notifier_clear_flush_young(): kvm_age_gfn() with a flush
    /// (unless CONFIG_KVM_ELIDE_TLB_FLUSH_IF_YOUNG, not modelled).
    public func clearFlushYoung(hvas: Swift.Range<Int>) -> Bool {
        // The oracle notes which gfns were young once the lock is held, and
        // records the aging after the flush, before the unlock (I4).
        var wasYoung: [Int] = []
        return handleHVARange(Range(start: hvas.lowerBound, end: hvas.upperBound, handler: { [unowned self] in arch.ageGFN($0) },
                                    onLock: { [oracle] in wasYoung = oracle?.youngGfns(hvas) ?? [] }, flushOnRet: true,
                                    mayBlock: false, beforeUnlock: { [oracle] in oracle?.agedWithFlush(wasYoung) })).ret
    }

    /// kvm_mmu_notifier_clear_young(): kvm_age_gfn() without a flush.
    public func clearYoung(hvas: Swift.Range<Int>) -> Bool {
        handleHVARange(Range(start: hvas.lowerBound, end: hvas.upperBound, handler: { [unowned self] in arch.ageGFN($0) },
                             onLock: nil, flushOnRet: false, mayBlock: false)).ret
    }

    /// kvm_mmu_notifier_test_young(): kvm_test_age_gfn() of one page.
    public func testYoung(hva: Int) -> Bool {
        handleHVARange(Range(start: hva, end: hva + 1, handler: { [unowned self] in arch.testAgeGFN($0) },
                             onLock: nil, flushOnRet: false, mayBlock: false)).ret
    }
}

/// The host mm's notifier calls (hva page ranges), as mm/mmu_notifier.c makes
/// them, onto the callbacks above.
extension KVMMMUNotifier {
    public func invalidateRangeStart(_ range: Swift.Range<Int>) { invalidateRangeStart(hvas: range) }
    public func invalidateRangeEnd(_ range: Swift.Range<Int>) { invalidateRangeEnd(hvas: range) }
    /// .change_pte() is gone (f3b65bbaed7c, "KVM: remove kvm_arch_mmu_notifier_change_pte", 2024):
    /// x86 and arm64 zap in invalidate_range_start, so their handlers could only
    /// change a present SPTE that no longer exists. A no-op.
    public func changePTE(hva: Int, pte: PTE) {}
    public func clearFlushYoung(_ range: Swift.Range<Int>) -> Bool { clearFlushYoung(hvas: range) }
    public func clearYoung(_ range: Swift.Range<Int>) -> Bool { clearYoung(hvas: range) }
    // testYoung(hva:) above is the protocol's own.
}
