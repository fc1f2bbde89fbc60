// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The VPA, DTL and SLB-shadow registration of a Book3S HV VM (book3s_hv.c):
/// do_h_register_vpa(), kvmppc_update_vpa(s), kvmppc_create_dtl_entry() and the
/// VPA yield count updates at guest entry and exit (book3s_hv_rmhandlers.S), in
/// v3.4 (pre-fix: no update protocol, no DTL writer) and seed 003 form.
public final class VPARegistration: @unchecked Sendable {
    /// Coverage marks.
    public static let markUpdatePending = CoverageMark("ppc: update_pending consumed (kvmppc_update_vpa)")
    public static let markUpdateRetry = CoverageMark("ppc: kvmppc_update_vpa retries (next_gpa moved)")
    public static let markDTLWrap = CoverageMark("ppc: DTL wraps at its end")
    public static let markResource = CoverageMark("ppc: H_REGISTER_VPA returns H_RESOURCE")
    public static let markCallerUnpin = CoverageMark("ppc: v3.4 H_REGISTER_VPA replaces another vcpu's area, unpinning the caller's")
    public let engine: SimEngine
    public let variant: VPAVariant
    public let vcpus: [VPAVCPU]
    public let oracle: VPAOracle
    let pinning: GuestPagePinning
    /// The guest's buffers: the length word at offset 4 of each area it may
    /// register (what do_h_register_vpa reads through the pinned page).
    let lengths: Locked<[Int: Int]>

    /// `pinningMemslots` plants a bug for the tests: kvmppc_pin_guest_page()
    /// translating through other memslots than the VM's (a pin of the wrong
    /// gpa); the oracle keeps the VM's. nil (always, outside tests): the VM's.
    /// `guestLogs`: the vcpus' DTLs are read by the guest (`VPAVCPU.guestLog`).
    public init(engine: SimEngine, variant: VPAVariant, vcpus: Int, hostMM: HostMM, memslots: Memslots,
                pinningMemslots: Memslots? = nil, guestLogs: Bool = false) {
        self.engine = engine
        self.variant = variant
        self.vcpus = (0..<vcpus).map { VPAVCPU(id: $0, engine: engine, guestLog: guestLogs) }
        lengths = Locked([:])
        oracle = VPAOracle(engine: engine, hostMM: hostMM, memslots: memslots, guestLengths: lengths, vcpus: vcpus)
        pinning = GuestPagePinning(hostMM: hostMM, memslots: pinningMemslots ?? memslots, oracle: oracle)
    }

    /// A world reset in place (Catalog's `ResettableWorld`): the state outside
    /// `AtomicWords` as `init` left it, before any registration: no length
    /// word written by the guest, each vcpu's ghost log generation at 1
    /// (`VPAVCPU.resetForReuse`), the oracle's records empty
    /// (`VPAOracle.resetForReuse`). The vcpus' words and locks, the oracle's
    /// per-vcpu words and the host's pages are the world's `WorldMemory` (and
    /// host page free lists) to restore; the variant and the pinning's
    /// memslots are set at build and never change.
    public func resetForReuse() {
        lengths.withLock { $0 = [:] }
        for v in vcpus { v.resetForReuse() }
        oracle.resetForReuse()
    }

    /// The guest writes the length word of the buffer at `gpa`.
    public func guestSetLength(gpa: Int, _ len: Int) { lengths.withLock { $0[gpa] = len } }
    func readLength(gpa: Int) -> Int { lengths.withLock { $0[gpa] ?? 0 } }

    /// The calling actor's vcpu id (oracle bookkeeping).
    func setPointer(_ t: VPAVCPU, _ index: Int, _ value: Int, by caller: Int) {
        oracle.pointerChanging(owner: t.id, by: caller)
        t.words.store(index, UInt64(value))
    }
}
