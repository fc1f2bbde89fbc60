// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A guest of several vcpus with paravirtual TLB flushes (arch/x86/kernel/kvm.c)
/// on a host that records steal time (arch/x86/kvm/x86.c).
///
/// State: per vcpu the guest's `kvm_steal_time.preempted` byte (guest memory),
/// the host's copy (`vcpu->arch.st.steal.preempted`, pre-fix;
/// `vcpu->arch.st.preempted`, patched), a guest TLB (the vcpu's VPID-tagged
/// entries), flush IPIs pending and acknowledged, and whether it is online.
/// The guest page table maps each guest virtual page to a gfn with a generation.
///
/// Locking: `preempted` changes by atomic exchange / compare-exchange (guest) or
/// plain stores (host, as the kernel writes guest memory); each guest page's
/// mapping changes under its guest page-table lock; a vcpu's TLB is its own
/// (a mutex only for the parallel runtime).
public final class StealTimeVM: @unchecked Sendable {
    /// The oracles this VM checks.
    public static let oracles: [Oracle] = [.staleGuestTLB]
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
    /// Per vcpu: the guest's `kvm_steal_time.preempted` byte, the host's copy,
    /// flush IPIs requested and acknowledged, online.
    enum VCPUField: Int, CaseIterable { case guestPreempted, hostCopy, ipisRequested, ipisAcked, online }
    let words: AtomicRecords<VCPUField>
    /// Per guest page: the gfn it maps, the mapping's generation, and the last
    /// generation whose TLB flush returned (oracle).
    enum PageField: Int, CaseIterable { case gfn, generation, retiredGeneration }
    let pt: AtomicRecords<PageField>
    let ptLocks: [SpinLock]
    let tlbs: [Locked<[Int: (gfn: Int, gen: UInt64)]>]

    public init(engine: SimEngine, variant: StealTimeVariant, vcpus: Int, vpns: Int, gfns: Int) {
        self.engine = engine
        self.variant = variant
        self.vcpus = vcpus
        self.vpns = vpns
        self.gfns = gfns
        words = AtomicRecords(count: vcpus, kernel: true)
        pt = AtomicRecords(count: vpns, kernel: true)
        ptLocks = (0..<vpns).map { _ in SpinLock("guest page table lock", engine: engine) }
        tlbs = (0..<vcpus).map { _ in Locked([:]) }
        for v in 0..<vcpus { words.store(v, .online, 1) }                  // online
        for p in 0..<vpns { pt.store(p, .gfn, UInt64(p % gfns)); pt.store(p, .generation, 1) }
    }
    deinit { words.free(); pt.free() }

    func guestPreempted(_ v: Int) -> UInt64 { words.load(v, .guestPreempted) }
    func isOnline(_ v: Int) -> Bool { words.load(v, .online) != 0 }

    // MARK: - host (arch/x86/kvm/x86.c)

    /// record_steal_time(), on the way into the guest after a vcpu_load.
    public func recordStealTime(_ v: Int) {
        switch variant {
        case .preFix:
            // kvm_read_guest_cached(): the whole struct into vcpu->arch.st.steal.
            words.store(v, .hostCopy, guestPreempted(v))
            engine.event("vcpu\(v): record_steal_time: kvm_read_guest_cached copies preempted = \(guestPreempted(v))")
            engine.point("record_steal_time:read_guest_cached")
            let old = words.load(v, .hostCopy)
            words.store(v, .hostCopy, 0)                                      // xchg(&vcpu->arch.st.steal.preempted, 0)
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            engine.point("record_steal_time:write_guest_cached")
            let overwritten = guestPreempted(v)
            words.store(v, .guestPreempted, words.load(v, .hostCopy))                      // kvm_write_guest_cached(): the copy back
            engine.event("vcpu\(v): record_steal_time: xchg on the copy saw \(old); kvm_write_guest_cached writes preempted = 0 over the guest's \(overwritten)")
        case .patched:
            let old = words.exchange(v, .guestPreempted, 0)                            // xchg(&st->preempted, 0) on the guest page
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            words.store(v, .hostCopy, 0)                                      // vcpu->arch.st.preempted = 0
            engine.event("vcpu\(v): record_steal_time: xchg preempted \(old) -> 0")
        }
    }

    /// kvm_steal_time_set_preempted(), at vcpu_put.
    public func setPreempted(_ v: Int) {
        if words.load(v, .hostCopy) != 0 { return }                           // already marked
        words.store(v, .hostCopy, Self.preemptedBit)
        words.store(v, .guestPreempted, Self.preemptedBit)                              // write the byte to the guest
        engine.event("vcpu\(v): kvm_steal_time_set_preempted")
    }

    /// kvm_vcpu_flush_tlb(): flush the vcpu's guest TLB (its VPID).
    func kvmVCPUFlushTLB(_ v: Int) {
        engine.cover(Self.markHostPVFlush)
        tlbs[v].withLock { $0.removeAll() }
        engine.event("vcpu\(v): host flushes the guest TLB (KVM_VCPU_FLUSH_TLB)")
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
            if state & Self.preemptedBit != 0 && words.cas(c, .guestPreempted, state, state | Self.flushBit) {
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
}
