// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The steal-time PV TLB flush race (CVE-2019-3016), a historical race for the
/// regression suite (section 7 of the kernel-semantics reference).
public enum StealTimeVariant: String, CaseIterable, Sendable {
    /// v5.4 record_steal_time(): read the guest's `struct kvm_steal_time` into
    /// `vcpu->arch.st.steal`, `xchg()` the copy's `preempted`, write the whole
    /// copy back; a KVM_VCPU_FLUSH_TLB the guest sets in between is overwritten.
    case preFix = "pre-fix"
    /// v5.6 ("x86/kvm: Be careful not to clear KVM_VCPU_FLUSH_TLB bit", "x86/KVM:
    /// Make sure KVM_VCPU_FLUSH_TLB flag is not missed"): `xchg()` on the mapped
    /// guest page itself; `kvm_steal_time_set_preempted()` stores there too.
    case patched
}

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
    /// Per vcpu: guest preempted byte, host copy, IPIs requested, IPIs acked, online.
    let words: AtomicWords
    /// Per guest page: gfn, generation, retired generation (oracle).
    let pt: AtomicWords
    let ptLocks: [SpinLock]
    let tlbs: [Locked<[Int: (gfn: Int, gen: UInt64)]>]

    public init(engine: SimEngine, variant: StealTimeVariant, vcpus: Int, vpns: Int, gfns: Int) {
        self.engine = engine
        self.variant = variant
        self.vcpus = vcpus
        self.vpns = vpns
        self.gfns = gfns
        words = AtomicWords(count: 5 * vcpus)
        pt = AtomicWords(count: 3 * vpns)
        ptLocks = (0..<vpns).map { _ in SpinLock("guest page table lock", engine: engine) }
        tlbs = (0..<vcpus).map { _ in Locked([:]) }
        for v in 0..<vcpus { words.store(5 * v + 4, 1) }                  // online
        for p in 0..<vpns { pt.store(3 * p, UInt64(p % gfns)); pt.store(3 * p + 1, 1) }
    }
    deinit { words.free(); pt.free() }

    func guestPreempted(_ v: Int) -> UInt64 { words.load(5 * v) }
    func isOnline(_ v: Int) -> Bool { words.load(5 * v + 4) != 0 }

    // MARK: - host (arch/x86/kvm/x86.c)

    /// record_steal_time(), on the way into the guest after a vcpu_load.
    public func recordStealTime(_ v: Int) {
        switch variant {
        case .preFix:
            // kvm_read_guest_cached(): the whole struct into vcpu->arch.st.steal.
            words.store(5 * v + 1, guestPreempted(v))
            engine.event("vcpu\(v): record_steal_time: kvm_read_guest_cached copies preempted = \(guestPreempted(v))")
            engine.point("record_steal_time:read_guest_cached")
            let old = words.load(5 * v + 1)
            words.store(5 * v + 1, 0)                                      // xchg(&vcpu->arch.st.steal.preempted, 0)
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            engine.point("record_steal_time:write_guest_cached")
            let overwritten = guestPreempted(v)
            words.store(5 * v, words.load(5 * v + 1))                      // kvm_write_guest_cached(): the copy back
            engine.event("vcpu\(v): record_steal_time: xchg on the copy saw \(old); kvm_write_guest_cached writes preempted = 0 over the guest's \(overwritten)")
        case .patched:
            let old = words.exchange(5 * v, 0)                            // xchg(&st->preempted, 0) on the guest page
            if old & Self.flushBit != 0 { kvmVCPUFlushTLB(v) }
            words.store(5 * v + 1, 0)                                      // vcpu->arch.st.preempted = 0
            engine.event("vcpu\(v): record_steal_time: xchg preempted \(old) -> 0")
        }
    }

    /// kvm_steal_time_set_preempted(), at vcpu_put.
    public func setPreempted(_ v: Int) {
        if words.load(5 * v + 1) != 0 { return }                           // already marked
        words.store(5 * v + 1, Self.preemptedBit)
        words.store(5 * v, Self.preemptedBit)                              // write the byte to the guest
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
        let req = words.load(5 * v + 2)
        guard req > words.load(5 * v + 3) else { return }
        tlbs[v].withLock { $0.removeAll() }
        words.store(5 * v + 3, req)
    }

    /// A load through the vcpu's TLB, or a walk of the guest page table that fills it.
    public func access(_ v: Int, vpn: Int) {
        handleIPIs(v)
        engine.point("guest:access")
        let retired = pt.load(3 * vpn + 2)
        let hit = tlbs[v].withLock { $0[vpn] }
        if let e = hit {
            if e.gen <= retired {
                engine.report(oracle: "stale-guest-tlb", "vcpu\(v) reads vpn \(vpn) through a TLB entry to gfn \(e.gfn) (generation \(e.gen)); the guest remapped it and its TLB flush returned")
            }
            return
        }
        let gfn = Int(pt.load(3 * vpn)), gen = pt.load(3 * vpn + 1)
        tlbs[v].withLock { $0[vpn] = (gfn, gen) }
    }

    /// Remap a guest page and flush every TLB that may hold it: the local flush,
    /// then kvm_flush_tlb_others() for the other online vcpus.
    public func remap(_ v: Int, vpn: Int, to gfn: Int) {
        guard lockServicingIPIs(v, vpn) else { return }
        let gen = pt.load(3 * vpn + 1)
        pt.store(3 * vpn, UInt64(gfn % gfns))
        pt.store(3 * vpn + 1, gen + 1)
        tlbs[v].withLock { _ = $0.removeValue(forKey: vpn) }
        kvmFlushTLBOthers(v)
        pt.store(3 * vpn + 2, max(pt.load(3 * vpn + 2), gen))              // oracle: generation `gen` is retired
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
            if state & Self.preemptedBit != 0 && words.cas(5 * c, state, state | Self.flushBit) {
                engine.cover(Self.markPVFlushQueued)
                engine.event("vcpu\(v): vcpu\(c) is preempted: KVM_VCPU_FLUSH_TLB set, no IPI")
                continue
            }
            engine.cover(Self.markIPI)
            ipis.append((c, words.add(5 * c + 2, 1)))
        }
        for (c, req) in ipis {
            while !(words.load(5 * c + 3) >= req || !isOnline(c) || engine.stopRequested) {
                engine.waitUntil("native_flush_tlb_others:wait") { [self] in
                    words.load(5 * c + 3) >= req || !isOnline(c) || engine.stopRequested || words.load(5 * v + 2) > words.load(5 * v + 3)
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
                !ptLocks[vpn].isLocked || words.load(5 * v + 2) > words.load(5 * v + 3) || engine.stopRequested
            }
            handleIPIs(v)
            if ptLocks[vpn].tryLock() { return true }
            if engine.stopRequested { return false }
        }
    }

    /// The vcpu leaves for good (CPU offline): flush, then drop out of flush masks.
    public func offline(_ v: Int) {
        tlbs[v].withLock { $0.removeAll() }
        words.store(5 * v + 4, 0)
    }
}
