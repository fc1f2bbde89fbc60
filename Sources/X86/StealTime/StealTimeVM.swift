// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// A guest of several vcpus with paravirtual TLB flushes (arch/x86/kernel/kvm.c)
/// on a host that records steal time (arch/x86/kvm/x86.c).
///
/// State: per vcpu the guest's `kvm_steal_time.preempted` byte, which lives in
/// guest memory: the content word of the host page that backs the vcpu's
/// steal-time gfn (one page per vcpu, hva `stealTimeBase + v`, so the host mm's
/// events can remap it); the host's copy (`vcpu->arch.st.steal.preempted`,
/// pre-fix; `vcpu->arch.st.preempted` later); the gfn_to_pfn cache of the v5.6
/// fix (`vcpu->arch.st.cache`: a pinned pfn); a guest TLB (the vcpu's
/// VPID-tagged entries), flush IPIs pending and acknowledged, and whether it is
/// online. The guest page table maps each guest virtual page to a gfn with a
/// generation.
///
/// The guest reaches its steal-time page as the CPU does, through the host's
/// current mapping of it (the model does not keep EPT here: an access faults
/// the page in with get_user_pages()).
///
/// Locking: `preempted` changes by atomic exchange / compare-exchange (guest, and
/// the host from v5.6) or plain stores (host copies); each guest page's mapping
/// changes under its guest page-table lock; a vcpu's TLB and its steal-time
/// cache are its own (a mutex only for the parallel runtime).
public final class StealTimeVM: @unchecked Sendable {
    /// The oracles this VM checks.
    public static let oracles: [Oracle] = [.staleGuestTLB, .staleSharedArea]
    public static let preemptedBit: UInt64 = 1 << 0   // KVM_VCPU_PREEMPTED
    public static let flushBit: UInt64 = 1 << 1       // KVM_VCPU_FLUSH_TLB
    public static let markPVFlushQueued = CoverageMark("x86: PV TLB flush queued in steal_time (no IPI)")
    public static let markHostPVFlush = CoverageMark("x86: record_steal_time flushes for the guest")
    public static let markIPI = CoverageMark("x86: flush IPI to a running vcpu")

    public let engine: SimEngine
    public let variant: StealTimeVariant
    public let vcpus: Int
    public let vpns: Int
    let gfns: Int
    /// The host mm whose pages hold the vcpus' steal-time areas.
    public let hostMM: HostMM
    /// The hva of vcpu 0's steal-time page (vcpu v's is `stealTimeBase + v`).
    public let stealTimeBase: Int
    /// Per vcpu: the host's copy of `preempted`, the pfn of the v5.6 gfn_to_pfn
    /// cache (+1; 0 = empty), flush IPIs requested and acknowledged, online.
    enum VCPUField: Int, CaseIterable { case hostCopy, cachedPfn, ipisRequested, ipisAcked, online }
    let words: AtomicRecords<VCPUField>
    /// Per guest page: the gfn it maps, the mapping's generation, and the last
    /// generation whose TLB flush returned (oracle).
    enum PageField: Int, CaseIterable { case gfn, generation, retiredGeneration }
    let pt: AtomicRecords<PageField>
    let ptLocks: [SpinLock]
    let tlbs: [Locked<[Int: (gfn: Int, gen: UInt64)]>]

    public init(engine: SimEngine, variant: StealTimeVariant, vcpus: Int, vpns: Int, gfns: Int, hostMM: HostMM, stealTimeBase: Int) {
        self.engine = engine
        self.variant = variant
        self.vcpus = vcpus
        self.vpns = vpns
        self.gfns = gfns
        self.hostMM = hostMM
        self.stealTimeBase = stealTimeBase
        words = AtomicRecords(count: vcpus, kernel: true)
        pt = AtomicRecords(count: vpns, kernel: true)
        ptLocks = (0..<vpns).map { _ in SpinLock("guest page table lock", engine: engine) }
        tlbs = (0..<vcpus).map { _ in Locked([:]) }
        for v in 0..<vcpus { words.store(v, .online, 1) }                  // online
        for p in 0..<vpns { pt.store(p, .gfn, UInt64(p % gfns)); pt.store(p, .generation, 1) }
    }
    deinit { words.free(); pt.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): every vcpu's
    /// guest TLB empty, as `init` made it. The per-vcpu words (host copy of
    /// `preempted`, the gfn_to_pfn cache, flush IPIs, online), the guest page
    /// table with its oracle record, its locks and the steal-time pages'
    /// contents are words the world's `WorldMemory` restores.
    public func resetForReuse() {
        for tlb in tlbs { tlb.withLock { $0 = [:] } }
    }

    func isOnline(_ v: Int) -> Bool { words.load(v, .online) != 0 }
    func hva(_ v: Int) -> Int { stealTimeBase + v }

    // MARK: - guest memory: the steal-time page

    /// One access to vcpu `v`'s steal-time page through its current mapping
    /// (the guest's through EPT, or KVM's through the hva), atomic with respect to
    /// the host's PTE changes; `body` gets the pfn and must not reach a point.
    @discardableResult
    func withMappedPage<R>(_ v: Int, write: Bool, _ body: (Int) -> R) -> R? {
        hostMM.accessMapped(hva(v), write: write, body)
    }

    /// The guest's `preempted` byte of vcpu `v`.
    func guestPreempted(_ v: Int) -> UInt64 { withMappedPage(v, write: false) { hostMM.pages.content.load($0) } ?? 0 }

    // MARK: - host (arch/x86/kvm/x86.c)

    /// record_steal_time(), on the way into the guest after a vcpu_load.
    public func recordStealTime(_ v: Int) {
        switch variant {
        case .preFix:
            // kvm_read_guest_cached(): the whole struct into vcpu->arch.st.steal
            // (a copy through the hva: the page mapped now).
            let read = guestPreempted(v)
            words.store(v, .hostCopy, read)
            engine.event("vcpu\(v): record_steal_time: kvm_read_guest_cached copies preempted = \(read)")
            engine.point("record_steal_time:read_guest_cached")
            let old = words.load(v, .hostCopy)
            words.store(v, .hostCopy, 0)                                      // xchg(&vcpu->arch.st.steal.preempted, 0)
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            engine.point("record_steal_time:write_guest_cached")
            let copy = words.load(v, .hostCopy)
            withMappedPage(v, write: true) { pfn in                          // kvm_write_guest_cached(): the copy back
                let overwritten = hostMM.pages.content.load(pfn)
                hostMM.pages.content.store(pfn, copy)
                engine.event("vcpu\(v): record_steal_time: xchg on the copy saw \(old); kvm_write_guest_cached writes preempted = 0 over the guest's \(overwritten)")
            }
        case .patched:
            // kvm_map_gfn(..., &vcpu->arch.st.cache, false): the cached pfn, or
            // gfn_to_pfn_memslot() on a miss (the reference stays in the cache).
            guard let pfn = kvmMapGFN(v, atomic: false) else { return }
            let old = hostMM.pages.content.exchange(pfn, 0)                 // xchg(&st->preempted, 0)
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            words.store(v, .hostCopy, 0)                                      // vcpu->arch.st.preempted = 0
            engine.event("vcpu\(v): record_steal_time: xchg preempted \(old) -> 0 in pfn \(pfn)")
        case .hvaCache:
            // user_access_begin() on the gfn_to_hva_cache's hva: xchg on the page mapped now.
            let old = withMappedPage(v, write: true) { pfn in hostMM.pages.content.exchange(pfn, 0) } ?? 0
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            words.store(v, .hostCopy, 0)
            engine.event("vcpu\(v): record_steal_time: xchg on the user address: preempted \(old) -> 0")
        }
    }

    /// kvm_steal_time_set_preempted(), at vcpu_put (atomic context).
    public func setPreempted(_ v: Int) {
        if words.load(v, .hostCopy) != 0 { return }                           // already marked
        switch variant {
        case .preFix:
            words.store(v, .hostCopy, Self.preemptedBit)
            withMappedPage(v, write: true) { hostMM.pages.content.store($0, Self.preemptedBit) }   // kvm_write_guest_offset_cached()
        case .patched:
            // kvm_map_gfn(..., atomic = true): a cache miss is -EAGAIN (nothing written).
            guard let pfn = kvmMapGFN(v, atomic: true) else { return }
            hostMM.pages.content.store(pfn, Self.preemptedBit)              // st->preempted = vcpu->arch.st.preempted = ...
            words.store(v, .hostCopy, Self.preemptedBit)
        case .hvaCache:
            // copy_to_user_nofault(): fails (and nothing is marked) if the page is not mapped writable.
            let p = hostMM.pte(hva(v))
            guard p.isPresent, p.isWrite, withMappedPage(v, write: true, { hostMM.pages.content.store($0, Self.preemptedBit) }) != nil else { return }
            words.store(v, .hostCopy, Self.preemptedBit)
        }
        engine.event("vcpu\(v): kvm_steal_time_set_preempted")
    }

    /// kvm_map_gfn() with vcpu->arch.st.cache (virt/kvm/kvm_main.c, v5.6-v5.15):
    /// on a hit (a pfn cached for the gfn, the memslot generation unchanged:
    /// memslots never change here) the cached pfn, whatever the host maps now;
    /// on a miss, -EAGAIN in atomic context, else gfn_to_pfn_memslot(), whose
    /// page reference the cache keeps. The oracle checks the pfn it hands out.
    func kvmMapGFN(_ v: Int, atomic: Bool) -> Int? {
        var cached = Int(words.load(v, .cachedPfn)) - 1
        if cached < 0 {
            if atomic { return nil }
            guard let got = hostMM.getUserPage(hva(v), write: true) else { return nil }   // kvm_cache_gfn_to_pfn()
            words.store(v, .cachedPfn, UInt64(got.pfn + 1))
            cached = got.pfn
        }
        withoutAccessPoints {
            if hostMM.currentPfn(hva(v)) != cached {
                engine.report(.staleSharedArea, "vcpu\(v)'s steal time is written into pfn \(cached), its gfn_to_pfn cache's page, but the host now backs the gfn with \(hostMM.currentPfn(hva(v)).map { "pfn \($0)" } ?? "no page"): nothing invalidated the cache")
            }
        }
        return cached
    }

    /// kvm_vcpu_flush_tlb(): flush the vcpu's guest TLB (its VPID).
    func kvmVCPUFlushTLB(_ v: Int) {
        engine.cover(Self.markHostPVFlush)
        tlbs[v].withLock { $0.removeAll() }
        engine.event("vcpu\(v): host flushes the guest TLB (KVM_VCPU_FLUSH_TLB)")
    }

    /// The vcpu goes away: kvm_arch_vcpu_free() releases the cache's page.
    public func destroyVCPU(_ v: Int) {
        let cached = Int(words.load(v, .cachedPfn)) - 1
        if cached >= 0 { words.store(v, .cachedPfn, 0); hostMM.pages.put(cached) }
    }

    // MARK: - guest (arch/x86/kernel/kvm.c, arch/x86/mm/tlb.c)

    /// The flush IPI handler (flush_tlb_func), run at the next instruction boundary.
    public func handleIPIs(_ v: Int) {
        let req = words.load(v, .ipisRequested)
        guard req > words.load(v, .ipisAcked) else { return }
        tlbs[v].withLock { $0.removeAll() }
        words.store(v, .ipisAcked, req)
    }

    /// A load through the vcpu's TLB, or a walk of the guest page table that fills it.
    public func access(_ v: Int, vpn: Int) {
        handleIPIs(v)
        engine.point("guest:access")
        let retired = pt.peek(vpn, .retiredGeneration)      // the oracle's record
        let hit = tlbs[v].withLock { $0[vpn] }
        if let e = hit {
            if e.gen <= retired {
                engine.report(.staleGuestTLB, "vcpu\(v) reads vpn \(vpn) through a TLB entry to gfn \(e.gfn) (generation \(e.gen)); the guest remapped it and its TLB flush returned")
            }
            return
        }
        let gfn = Int(pt.load(vpn, .gfn)), gen = pt.load(vpn, .generation)
        tlbs[v].withLock { $0[vpn] = (gfn, gen) }
    }

    /// Remap a guest page and flush every TLB that may hold it: the local flush,
    /// then kvm_flush_tlb_others() for the other online vcpus.
    public func remap(_ v: Int, vpn: Int, to gfn: Int) {
        guard lockServicingIPIs(v, vpn) else { return }
        let gen = pt.load(vpn, .generation)
        pt.store(vpn, .gfn, UInt64(gfn % gfns))
        pt.store(vpn, .generation, gen + 1)
        tlbs[v].withLock { _ = $0.removeValue(forKey: vpn) }
        kvmFlushTLBOthers(v)
        pt.store(vpn, .retiredGeneration, max(pt.load(vpn, .retiredGeneration), gen))              // oracle: generation `gen` is retired
        engine.event("vcpu\(v): remapped vpn \(vpn) -> gfn \(gfn % gfns), TLBs flushed")
        ptLocks[vpn].unlock()
    }

    /// kvm_flush_tlb_others(): a preempted vcpu gets KVM_VCPU_FLUSH_TLB set in its
    /// steal_time (try_cmpxchg) instead of an IPI; the others get an IPI
    /// (native_flush_tlb_others) and the caller waits for each to run the handler.
    func kvmFlushTLBOthers(_ v: Int) {
        var ipis: [(Int, UInt64)] = []
        for c in 0..<vcpus where c != v && isOnline(c) {
            let state = guestPreempted(c)
            engine.point("kvm_flush_tlb_others:read_preempted")
            let queued = state & Self.preemptedBit != 0
                && withMappedPage(c, write: true, { hostMM.pages.content.cas($0, state, state | Self.flushBit) }) == true
            if queued {
                engine.cover(Self.markPVFlushQueued)
                engine.event("vcpu\(v): vcpu\(c) is preempted: KVM_VCPU_FLUSH_TLB set, no IPI")
                continue
            }
            engine.cover(Self.markIPI)
            ipis.append((c, words.add(c, .ipisRequested, 1)))
        }
        for (c, req) in ipis {
            while !(words.load(c, .ipisAcked) >= req || !isOnline(c) || engine.stopRequested) {
                engine.waitUntil("native_flush_tlb_others:wait") { [self] in
                    words.load(c, .ipisAcked) >= req || !isOnline(c) || engine.stopRequested || words.load(v, .ipisRequested) > words.load(v, .ipisAcked)
                }
                handleIPIs(v)                                              // IRQs stay enabled while waiting
            }
        }
    }

    /// spin_lock() with interrupts enabled: flush IPIs are served while waiting.
    /// False if the run stops first.
    func lockServicingIPIs(_ v: Int, _ vpn: Int) -> Bool {
        while true {
            engine.waitUntil("guest spin_lock") { [self] in
                !ptLocks[vpn].isLocked || words.load(v, .ipisRequested) > words.load(v, .ipisAcked) || engine.stopRequested
            }
            handleIPIs(v)
            if ptLocks[vpn].tryLock() { return true }
            if engine.stopRequested { return false }
        }
    }

    /// The vcpu leaves for good (CPU offline): flush, then drop out of flush masks.
    public func offline(_ v: Int) {
        tlbs[v].withLock { $0.removeAll() }
        words.store(v, .online, 0)
    }
}

extension Oracle {
    /// CVE-2019-3016's invariant.
    public static let staleGuestTLB = Oracle("stale-guest-tlb", "once a guest remap's TLB flush has returned, no vcpu reads the page through a TLB entry of the old mapping")
    /// T7 (7e2175ebd695): KVM writes a vcpu's shared area where the guest reads it.
    public static let staleSharedArea = Oracle("stale-shared-area", "KVM writes a vcpu's shared area (steal time) into the page that now backs its gfn, not a page it cached earlier")
}
