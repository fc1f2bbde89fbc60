// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Seed 003's variants of PAPR per-vcpu area registration.
public enum VPAVariant: String, CaseIterable, Sendable {
    /// v3.4: do_h_register_vpa(), on the caller's CPU, pins the new area and sets
    /// the target's `vpa`, `dtl`, `dtl_end`, `dtl_ptr` and `slb_shadow` directly,
    /// unpinning the old area first.
    case preFix = "pre-fix"
    /// Seed 003: `struct kvmppc_vpa`, `vpa_update_lock`; the caller only records
    /// `next_gpa` / `len` / `update_pending`, and the target itself pins and
    /// switches in kvmppc_update_vpas() before it enters the guest.
    case patched
}

/// The three areas a PAPR guest registers per vcpu.
public enum VPAKind: Int, CaseIterable, Sendable, CustomStringConvertible {
    case vpa, dtl, slbShadow
    public var description: String { ["VPA", "DTL", "SLB shadow"][rawValue] }
}

/// H_REGISTER_VPA subfunctions (`(flags >> H_VPA_FUNC_SHIFT) & H_VPA_FUNC_MASK`).
public enum VPASubfunc: Int, CaseIterable, Sendable {
    case regVPA = 1, regDTL = 2, regSLB = 3, deregVPA = 5, deregDTL = 6, deregSLB = 7
    public var kind: VPAKind { [.vpa, .dtl, .slbShadow][(rawValue - 1) % 4] }
    public var isRegister: Bool { rawValue < 4 }
}

/// Sizes and offsets (asm/lppaca.h, the PAPR spec), and the model's page size.
public enum PAPR {
    public static let pageSize = 4096
    /// L1_CACHE_BYTES on ppc64: areas must be cache-line aligned.
    public static let cacheLine = 128
    /// sizeof(struct lppaca): the smallest VPA.
    public static let lppacaSize = 640
    /// sizeof(struct dtl_entry).
    public static let dtlEntrySize = 48
    /// sizeof(struct reg_vpa): the length word at offset 4.
    public static let regVPASize = 8
    /// lppaca.yield_count (4 bytes) and lppaca.dtl_idx (8 bytes), model offsets.
    public static let yieldCountOffset = 0x68
    public static let dtlIdxOffset = 0x108
}

/// A guest virtual address in host terms: pfn * pageSize + offset ("address in
/// the kernel linear mapping" of a pinned page).
public typealias KernelVA = Int

/// kvmppc_pin_guest_page() / kvmppc_unpin_guest_page() (book3s_64_mmu_hv.c):
/// get_user_pages_fast() of the page behind a guest physical address, which keeps
/// the page from being freed while pinned; the host may reuse it once unpinned.
public final class GuestPagePinning: @unchecked Sendable {
    let hostMM: HostMM
    let memslots: Memslots
    let oracle: VPAOracle

    init(hostMM: HostMM, memslots: Memslots, oracle: VPAOracle) {
        self.hostMM = hostMM
        self.memslots = memslots
        self.oracle = oracle
    }

    /// Returns the kernel address of `gpa` and the bytes to the end of its page,
    /// or nil (no memslot, or the page could not be faulted in). May sleep.
    func pin(_ gpa: Int) -> (va: KernelVA, nb: Int)? {
        guard let hva = memslots.gfnToHva(gpa / PAPR.pageSize),
              let (pfn, _) = hostMM.getUserPage(hva, write: true) else { return nil }
        let off = gpa % PAPR.pageSize
        oracle.pinned(pfn)
        return (pfn * PAPR.pageSize + off, PAPR.pageSize - off)
    }

    /// An unpin of a page this code does not hold pinned is reported and not
    /// passed on (the kernel's put_page() would underflow the page's count).
    func unpin(_ va: KernelVA) {
        let pfn = va / PAPR.pageSize
        if oracle.unpinned(pfn) { hostMM.pages.put(pfn) }
    }
}

/// `struct kvmppc_vpa` (seed 003): the pinned area in use and the pending update.
/// `pinned_addr` / `pinned_end` change only in the owner's kvmppc_update_vpa();
/// `next_gpa`, `len` and `update_pending` only under `vpa_update_lock`.
struct KVMPPCVPA {
    static let words = 5
    let base: Int   // index of pinned_addr in the vcpu's words
    var pinnedAddr: Int { base }
    var pinnedEnd: Int { base + 1 }
    var nextGPA: Int { base + 2 }
    var len: Int { base + 3 }
    var updatePending: Int { base + 4 }
}

/// The VPA-related part of `vcpu->arch` for both variants.
///
/// Locking (patched): `vpa_update_lock` protects every `kvmppc_vpa` field but
/// `pinned_addr`; `pinned_addr`, `pinned_end`, `dtl_ptr` and `dtl_index` are
/// written only by the owner, outside the guest. Pre-fix: no lock; any vcpu's
/// H_REGISTER_VPA writes the pointers.
public final class VPAVCPU: @unchecked Sendable {
    public let id: Int
    let vpaUpdateLock: SpinLock
    /// patched: 3 x kvmppc_vpa, then dtl_ptr, dtl_index.
    /// pre-fix: vpa, dtl, dtl_end, slb_shadow, dtl_ptr, dtl_index.
    let words: AtomicWords
    static let dtlPtr = 3 * KVMPPCVPA.words
    static let dtlIndex = dtlPtr + 1
    static let preVPA = 0, preDTL = 1, preDTLEnd = 2, preSLB = 3

    init(id: Int, engine: SimEngine) {
        self.id = id
        vpaUpdateLock = SpinLock("spin_lock(&vcpu->arch.vpa_update_lock)", engine: engine)
        words = AtomicWords(count: 3 * KVMPPCVPA.words + 2)
    }
    deinit { words.free() }

    func area(_ k: VPAKind) -> KVMPPCVPA { KVMPPCVPA(base: k.rawValue * KVMPPCVPA.words) }
    func load(_ i: Int) -> Int { Int(words.load(i)) }

    /// registered(area) (vpa_is_registered()): judged on the pending state.
    func isRegistered(_ k: VPAKind) -> Bool {
        let a = area(k)
        return load(a.updatePending) != 0 ? load(a.nextGPA) != 0 : load(a.pinnedAddr) != 0
    }
}

/// The VPA, DTL and SLB-shadow registration of a Book3S HV VM (book3s_hv.c):
/// do_h_register_vpa(), kvmppc_update_vpa(s), kvmppc_create_dtl_entry() and the
/// VPA yield count updates at guest entry and exit, in v3.4 (pre-fix) and seed
/// 003 form.
public final class VPARegistration: @unchecked Sendable {
    /// Coverage marks.
    public static let markUpdatePending = CoverageMark("ppc: update_pending consumed (kvmppc_update_vpa)")
    public static let markUpdateRetry = CoverageMark("ppc: kvmppc_update_vpa retries (next_gpa moved)")
    public static let markDTLWrap = CoverageMark("ppc: DTL wraps at its end")
    public static let markResource = CoverageMark("ppc: H_REGISTER_VPA returns H_RESOURCE")
    public let engine: SimEngine
    public let variant: VPAVariant
    public let vcpus: [VPAVCPU]
    public let oracle: VPAOracle
    let pinning: GuestPagePinning
    /// The guest's buffers: the length word at offset 4 of each area it may
    /// register (what do_h_register_vpa reads through the pinned page).
    let lengths: Locked<[Int: Int]>

    public init(engine: SimEngine, variant: VPAVariant, vcpus: Int, hostMM: HostMM, memslots: Memslots) {
        self.engine = engine
        self.variant = variant
        self.vcpus = (0..<vcpus).map { VPAVCPU(id: $0, engine: engine) }
        oracle = VPAOracle(engine: engine, hostMM: hostMM, vcpus: vcpus)
        pinning = GuestPagePinning(hostMM: hostMM, memslots: memslots, oracle: oracle)
        lengths = Locked([:])
    }

    /// The guest writes the length word of the buffer at `gpa`.
    public func guestSetLength(gpa: Int, _ len: Int) { lengths.withLock { $0[gpa] = len } }
    func readLength(gpa: Int) -> Int { lengths.withLock { $0[gpa] ?? 0 } }

    /// The calling actor's vcpu id (oracle bookkeeping).
    func setPointer(_ t: VPAVCPU, _ index: Int, _ value: Int, by caller: Int) {
        oracle.pointerChanging(owner: t.id, by: caller)
        t.words.store(index, UInt64(value))
    }

    // MARK: - H_REGISTER_VPA

    /// do_h_register_vpa() / kvmppc_h_register_vpa: `caller` registers or
    /// deregisters an area of vcpu `target`.
    public func hRegisterVPA(caller: Int, subfunc rawSubfunc: Int, target: Int, gpa: Int) -> HCallStatus {
        guard target >= 0, target < vcpus.count else { return .parameter }   // kvmppc_find_vcpu()
        guard let subfunc = VPASubfunc(rawValue: rawSubfunc) else { return .parameter }
        switch variant {
        case .preFix: return preFixRegister(caller: caller, subfunc, vcpus[target], gpa: gpa)
        case .patched: return patchedRegister(caller: caller, subfunc, vcpus[target], gpa: gpa)
        }
    }

    /// Seed 003's do_h_register_vpa(): checks, then record the request under the
    /// target's `vpa_update_lock`; no pointer changes.
    func patchedRegister(caller: Int, _ subfunc: VPASubfunc, _ t: VPAVCPU, gpa: Int) -> HCallStatus {
        var vpa = 0, len = 0
        if subfunc.isRegister {
            // Registering new area - address must be cache-line aligned.
            if gpa % PAPR.cacheLine != 0 || gpa == 0 { return .parameter }
            // Convert logical addr to kernel addr and read length.
            guard let (va, nb) = pinning.pin(gpa) else { return .parameter }
            len = readLength(gpa: gpa)
            pinning.unpin(va)
            if len > nb || len < PAPR.regVPASize { return .parameter }
            vpa = gpa
        }
        var err = HCallStatus.parameter
        var vpap: KVMPPCVPA? = nil
        t.vpaUpdateLock.lock()
        switch subfunc {
        case .regVPA:
            if len < PAPR.lppacaSize { break }
            vpap = t.area(.vpa); err = .success
        case .regDTL:
            if len < PAPR.dtlEntrySize { break }
            len -= len % PAPR.dtlEntrySize
            err = .resource                                          // they must have registered a VPA
            if !t.isRegistered(.vpa) { break }
            vpap = t.area(.dtl); err = .success
        case .regSLB:
            err = .resource
            if !t.isRegistered(.vpa) { break }
            vpap = t.area(.slbShadow); err = .success
        case .deregVPA:
            err = .resource                                          // a DTL or SLB shadow still registered
            if t.isRegistered(.dtl) || t.isRegistered(.slbShadow) { break }
            vpap = t.area(.vpa); err = .success
        case .deregDTL:
            vpap = t.area(.dtl); err = .success
        case .deregSLB:
            vpap = t.area(.slbShadow); err = .success
        }
        if let a = vpap {
            t.words.store(a.nextGPA, UInt64(vpa))
            t.words.store(a.len, UInt64(len))
            t.words.store(a.updatePending, 1)
        }
        t.vpaUpdateLock.unlock()
        if err == .resource { engine.cover(Self.markResource) }
        engine.event("vcpu\(caller): H_REGISTER_VPA \(subfunc) for vcpu\(t.id) gpa \(hex(vpa)) len \(len) -> \(err)")
        return err
    }

    /// The v3.4 do_h_register_vpa(): pin, check, then unpin the old area and set
    /// the target's pointers directly, whatever the target is doing.
    func preFixRegister(caller: Int, _ subfunc: VPASubfunc, _ t: VPAVCPU, gpa: Int) -> HCallStatus {
        if subfunc.isRegister {
            if gpa % PAPR.cacheLine != 0 { return .parameter }
            if subfunc != .regVPA && t.load(VPAVCPU.preVPA) == 0 { engine.cover(Self.markResource); return .resource }
            guard let (va, nb) = pinning.pin(gpa) else { return .parameter }
            var len = readLength(gpa: gpa)
            let minimum = [PAPR.lppacaSize, PAPR.dtlEntrySize, PAPR.regVPASize][subfunc.kind.rawValue]
            if len > nb || len < minimum {
                pinning.unpin(va)
                return .parameter
            }
            engine.point("h_register_vpa:set_pointers")
            switch subfunc {
            case .regVPA:
                if t.load(VPAVCPU.preVPA) != 0 { unpinInstalled(t, .vpa, t.load(VPAVCPU.preVPA)) }
                setPointer(t, VPAVCPU.preVPA, va, by: caller)
                oracle.installed(owner: t.id, .vpa, va..<(va + len))
                initVPA(t, va, by: caller)
            case .regDTL:
                len -= len % PAPR.dtlEntrySize
                if t.load(VPAVCPU.preDTL) != 0 { unpinInstalled(t, .dtl, t.load(VPAVCPU.preDTL)) }
                setPointer(t, VPAVCPU.preDTL, va, by: caller)
                oracle.installed(owner: t.id, .dtl, va..<(va + len))
                engine.point("h_register_vpa:dtl_end")
                setPointer(t, VPAVCPU.preDTLEnd, va + len, by: caller)
                setPointer(t, VPAVCPU.dtlPtr, va, by: caller)
                t.words.store(VPAVCPU.dtlIndex, 0)
                oracle.dtlReset(owner: t.id)
            default:
                if t.load(VPAVCPU.preSLB) != 0 { unpinInstalled(t, .slbShadow, t.load(VPAVCPU.preSLB)) }
                setPointer(t, VPAVCPU.preSLB, va, by: caller)
                oracle.installed(owner: t.id, .slbShadow, va..<(va + len))
            }
        } else {
            switch subfunc {
            case .deregVPA:
                if t.load(VPAVCPU.preSLB) != 0 || t.load(VPAVCPU.preDTL) != 0 { engine.cover(Self.markResource); return .resource }
                let old = t.load(VPAVCPU.preVPA)
                if old == 0 { break }
                unpinInstalled(t, .vpa, old)
                setPointer(t, VPAVCPU.preVPA, 0, by: caller)
            case .deregDTL:
                let old = t.load(VPAVCPU.preDTL)
                if old == 0 { break }
                unpinInstalled(t, .dtl, old)
                engine.point("h_register_vpa:clear_dtl")
                setPointer(t, VPAVCPU.preDTL, 0, by: caller)
                setPointer(t, VPAVCPU.dtlPtr, 0, by: caller)
            default:
                let old = t.load(VPAVCPU.preSLB)
                if old == 0 { break }
                unpinInstalled(t, .slbShadow, old)
                setPointer(t, VPAVCPU.preSLB, 0, by: caller)
            }
        }
        engine.event("vcpu\(caller): H_REGISTER_VPA \(subfunc) for vcpu\(t.id) gpa \(hex(gpa)) -> success")
        return .success
    }

    func unpinInstalled(_ t: VPAVCPU, _ k: VPAKind, _ va: KernelVA) {
        oracle.uninstalled(owner: t.id, k)
        pinning.unpin(va)
    }

    /// init_vpa(): shared_proc = 1, yield_count = 1.
    func initVPA(_ t: VPAVCPU, _ va: KernelVA, by writer: Int) {
        oracle.hostWrite(owner: t.id, .vpa, va + PAPR.yieldCountOffset, 4, by: writer, what: "init_vpa")
    }

    // MARK: - the owner's side (seed 003)

    /// kvmppc_update_vpa(): pin `next_gpa` with the lock dropped (pinning sleeps),
    /// retry if a newer request came meanwhile, then switch `pinned_addr` and
    /// unpin the old area. `vpa_update_lock` held on entry and exit.
    func updateVPA(_ t: VPAVCPU, _ k: VPAKind) {
        let a = t.area(k)
        var va: KernelVA? = nil
        var nb = 0
        while true {
            let gpa = t.load(a.nextGPA)
            t.vpaUpdateLock.unlock()
            va = nil; nb = 0
            if gpa != 0, let p = pinning.pin(gpa) { (va, nb) = (p.va, p.nb) }
            t.vpaUpdateLock.lock()
            if gpa == t.load(a.nextGPA) { break }
            engine.cover(Self.markUpdateRetry)
            if let v = va { pinning.unpin(v) }                        // sigh... unpin that one and try again
        }
        t.words.store(a.updatePending, 0)
        engine.cover(Self.markUpdatePending)
        if let v = va, nb < t.load(a.len) {
            pinning.unpin(v)                                          // now too short: unregister
            va = nil
        }
        let old = t.load(a.pinnedAddr)
        if old != 0 { unpinInstalled(t, k, old) }
        setPointer(t, a.pinnedAddr, va ?? 0, by: t.id)
        if let v = va {
            setPointer(t, a.pinnedEnd, v + t.load(a.len), by: t.id)
            oracle.installed(owner: t.id, k, v..<(v + t.load(a.len)))
        }
        engine.event("vcpu\(t.id): kvmppc_update_vpa(\(k)): pinned \(va.map { hex($0) } ?? "nothing")")
    }

    /// kvmppc_update_vpas(): by the owner before it enters the guest.
    public func updateVPAs(_ t: VPAVCPU) {
        guard variant == .patched else { return }
        guard VPAKind.allCases.contains(where: { t.load(t.area($0).updatePending) != 0 }) else { return }
        t.vpaUpdateLock.lock()
        if t.load(t.area(.vpa).updatePending) != 0 {
            updateVPA(t, .vpa)
            let p = t.load(t.area(.vpa).pinnedAddr)
            if p != 0 { initVPA(t, p, by: t.id) }
        }
        if t.load(t.area(.dtl).updatePending) != 0 {
            updateVPA(t, .dtl)
            setPointer(t, VPAVCPU.dtlPtr, t.load(t.area(.dtl).pinnedAddr), by: t.id)
            t.words.store(VPAVCPU.dtlIndex, 0)
            oracle.dtlReset(owner: t.id)
        }
        if t.load(t.area(.slbShadow).updatePending) != 0 { updateVPA(t, .slbShadow) }
        t.vpaUpdateLock.unlock()
    }

    // MARK: - the owner's use of its areas

    /// The VPA the owner uses (`vcpu->arch.vpa.pinned_addr`, pre-fix `vcpu->arch.vpa`).
    func vpaAddr(_ t: VPAVCPU) -> KernelVA { t.load(variant == .patched ? t.area(.vpa).pinnedAddr : VPAVCPU.preVPA) }

    /// kvmppc_create_dtl_entry(): one entry at `dtl_ptr`, wrap at the DTL's end,
    /// smp_wmb(), then publish `vpa->dtl_idx`. By the owner, before guest entry.
    public func createDTLEntry(_ t: VPAVCPU) {
        let dt = t.load(VPAVCPU.dtlPtr)
        let vpa = vpaAddr(t)
        if dt == 0 || vpa == 0 { return }
        engine.point("kvmppc_create_dtl_entry:write")
        oracle.hostWrite(owner: t.id, .dtl, dt, PAPR.dtlEntrySize, by: t.id, what: "DTL entry")
        var next = dt + PAPR.dtlEntrySize
        let end = t.load(variant == .patched ? t.area(.dtl).pinnedEnd : VPAVCPU.preDTLEnd)
        if next == end { engine.cover(Self.markDTLWrap); next = t.load(variant == .patched ? t.area(.dtl).pinnedAddr : VPAVCPU.preDTL) }
        setPointer(t, VPAVCPU.dtlPtr, next, by: t.id)
        engine.event("vcpu\(t.id): DTL entry written at \(hex(dt)), dtl_ptr -> \(hex(next))\(next == dt + PAPR.dtlEntrySize ? "" : " (wrapped)")")
        smp_wmb()                                                     // order writing *dt vs. writing vpa->dtl_idx
        let idx = t.words.add(VPAVCPU.dtlIndex, 1)
        oracle.dtlPublished(owner: t.id, index: idx)
        oracle.hostWrite(owner: t.id, .vpa, vpa + PAPR.dtlIdxOffset, 8, by: t.id, what: "vpa->dtl_idx")
    }

    /// The yield count increment of kvmppc_hv_entry / the guest exit path.
    public func bumpYieldCount(_ t: VPAVCPU) {
        let vpa = vpaAddr(t)
        if vpa == 0 { return }
        oracle.hostWrite(owner: t.id, .vpa, vpa + PAPR.yieldCountOffset, 4, by: t.id, what: "yield_count")
    }

    /// One guest run of the owner: update its areas (patched), write a DTL entry,
    /// enter (yield count), run, exit (yield count). Its pointers are in use from
    /// the DTL entry to the exit.
    public func runGuest(_ t: VPAVCPU) {
        updateVPAs(t)
        oracle.owner(t.id, inUse: true)
        createDTLEntry(t)
        bumpYieldCount(t)
        engine.point("guest:run")
        bumpYieldCount(t)
        oracle.owner(t.id, inUse: false)
    }
}
