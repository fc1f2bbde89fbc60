// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The invariants of seed 003. The oracle knows nothing about variants: it sees
/// which area of which vcpu is installed (its pointer set) and pinned, who
/// changes a vcpu's area pointers and when, and every host write into an area.
///
/// - `vpa-unpinned-write`: every host write into a vcpu's VPA or DTL (yield count,
///   `dtl_idx`, DTL entries, init_vpa) lies inside the area currently installed
///   for that vcpu and kind, in a page that is not free.
/// - `vpa-pointer-change`: a vcpu's area pointers (`vpa`, `dtl`, `dtl_end`,
///   `dtl_ptr`, `slb_shadow`; after seed 003 `pinned_addr`, `pinned_end`,
///   `dtl_ptr`) change only by the vcpu itself, or while it is neither running
///   the guest nor writing a DTL entry.
/// - `dtl-publish-order`: `dtl_idx` is published only after the entry it counts
///   was written.
/// - `vpa-pin-balance`: a page is never unpinned more often than pinned, and at
///   the end of a run the pins held are exactly the installed areas' pages.
/// - `vpa-pinned-registered`: the area kvmppc_update_vpa() installs, and every
///   host write into a vcpu's area, lies in the page pinned at the host address
///   the registered gpa translates to through the memslots, inside the
///   registered offset and length (issue 20, class 5: a pin of the wrong gpa
///   leaves host memory safe and lands guest-visible writes in the wrong page).
/// - `vpa-registration-contract`: PAPR's registration rules as the v3.8
///   do_h_register_vpa() / kvmppc_update_vpa() keep them, checked on the
///   vcpu's `struct kvmppc_vpa` words whenever the target's `vpa_update_lock`
///   is released (`registrationPublished`) and on each H_REGISTER_VPA's
///   locked section (`hcallRecorded`); v3.4's pointers after its hcall
///   (`pointersPublished`). Issue 20, class 4. See `registrationPublished`.
///
/// Locking: a mutex around the area table; atomics for the rest.
public final class VPAOracle: @unchecked Sendable {
    /// The oracles this checker owns.
    public static let oracles: [Oracle] = [.vpaUnpinnedWrite, .vpaPointerChange, .dtlPublishOrder, .vpaPinBalance, .vpaPinnedRegistered,
                                           .vpaRegistrationContract, .hcallRC]
    let engine: SimEngine
    let hostMM: HostMM
    /// The VM's memslots, as the guest set them up: the oracle's own gpa -> hva
    /// translation (not the pinning code's).
    let memslots: Memslots
    /// The guest's buffers (the length word of each), as the guest wrote them.
    let guestLengths: Locked<[Int: Int]>
    /// The oracle's records, under one lock: on real threads a check reads
    /// them in one go, so it never sees a pin counted but its address not yet
    /// (or no longer) recorded, nor an area without its registration.
    private struct Records {
        var installedAreas: [Int: Range<Int>] = [:]
        /// Per installed area: the guest address and length of the
        /// registration it was installed for.
        var registeredFor: [Int: (gpa: Int, len: Int)] = [:]
        /// Per pinned page: its pins, and the host address it was pinned at
        /// (get_user_pages_fast()'s hva in kvmppc_pin_guest_page()); dropped
        /// with the page's last pin.
        var pins: [Int: (count: Int, hva: Int)] = [:]
    }
    private let records = Locked(Records())
    /// Per vcpu: in use (running or writing a DTL entry), DTL entries written.
    private enum Field: Int, CaseIterable { case inUse, dtlEntriesWritten }
    private let perVCPU: AtomicRecords<Field>

    init(engine: SimEngine, hostMM: HostMM, memslots: Memslots, guestLengths: Locked<[Int: Int]>, vcpus: Int) {
        self.engine = engine
        self.hostMM = hostMM
        self.memslots = memslots
        self.guestLengths = guestLengths
        perVCPU = AtomicRecords(count: vcpus)
    }
    deinit { perVCPU.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): no area
    /// installed, no registration recorded, no page pinned, as `init` left
    /// the records. The per-vcpu words (in use, DTL entries written) are the
    /// world's `WorldMemory` to restore; the guest's length words are its
    /// `VPARegistration`'s.
    func resetForReuse() { records.withLock { $0 = Records() } }

    func key(_ owner: Int, _ k: VPAKind) -> Int { 3 * owner + k.rawValue }

    /// The host address the guest's `gpa` names (the memslots' gfn -> hva),
    /// or nil outside every slot.
    func hva(ofGPA gpa: Int) -> Int? { memslots.gfnToHva(gpa / PAPR.pageSize) }

    /// Whether the page of `va` was pinned at the host address `gpa` translates to
    /// (the memslots'), and `va` is at `gpa`'s offset in it. The page pinned,
    /// not the host's current page for it: a zap may unmap a pinned page, and
    /// KVM keeps the page it pinned.
    private func isPage(of gpa: Int, _ va: KernelVA, _ r: Records) -> (ok: Bool, pinnedAt: Int?) {
        let at = r.pins[va / PAPR.pageSize]?.hva
        return (at != nil && at == hva(ofGPA: gpa) && va % PAPR.pageSize == gpa % PAPR.pageSize, at)
    }

    private func describe(hva: Int?) -> String {
        guard let hva else { return "no pin" }
        return memslots.hvaToGfn(hva).map { "pinned for gfn \($0)" } ?? "pinned at hva \(hex(hva)), in no memslot"
    }

    /// kvmppc_update_vpa() is about to install `va` for `t`'s area `k` (its
    /// `vpa_update_lock` held): `va` must be at the offset of the gpa the
    /// registration names now (`next_gpa`, read here from the vcpu), in the page
    /// pinned at the host address that gpa translates to.
    func installing(_ t: VPAVCPU, _ k: VPAKind, va: KernelVA) {
        withoutAccessPoints {
            let gpa = t.load(t.area(k).nextGPA)
            let (ok, at) = isPage(of: gpa, va, records.withLock { $0 })
            if !ok {
                engine.report(.vpaPinnedRegistered,
                              "vcpu\(t.id)'s \(k) is installed at \(hex(va)) (\(describe(hva: at))), but its registration names gpa \(hex(gpa))")
            }
        }
    }

    /// `area` is now `owner`'s area `k`, installed for the registration of
    /// `registeredGPA` with length `len` (v3.4: the hcall's arguments; seed 003:
    /// `next_gpa` and `len` when kvmppc_update_vpa() installs).
    func installed(owner: Int, _ k: VPAKind, _ area: Range<Int>, registeredGPA gpa: Int, len: Int) {
        withoutAccessPoints {
            records.withLock { $0.installedAreas[key(owner, k)] = area; $0.registeredFor[key(owner, k)] = (gpa, len) }
        }
    }
    func uninstalled(owner: Int, _ k: VPAKind) {
        withoutAccessPoints {
            records.withLock { $0.installedAreas[key(owner, k)] = nil; $0.registeredFor[key(owner, k)] = nil }
        }
    }
    public func installedArea(owner: Int, _ k: VPAKind) -> Range<Int>? { records.withLock { $0.installedAreas[key(owner, k)] } }

    /// `pfn` was pinned by get_user_pages_fast() of host address `hva`.
    func pinned(_ pfn: Int, hva: Int) {
        withoutAccessPoints {
            records.withLock { $0.pins[pfn] = (($0.pins[pfn]?.count ?? 0) + 1, hva) }
        }
    }

    /// Returns false (and reports) when `pfn` is not pinned.
    func unpinned(_ pfn: Int) -> Bool {
        withoutAccessPoints {
            let ok: Bool = records.withLock {
                guard let p = $0.pins[pfn], p.count > 0 else { return false }
                $0.pins[pfn] = p.count == 1 ? nil : (p.count - 1, p.hva)
                return true
            }
            if !ok {
                engine.report(.vpaPinBalance, pfn == 0 ? "NULL unpinned: put_page(virt_to_page(NULL)), a page nobody pinned"
                                                       : "pfn \(pfn) unpinned but not pinned (a second unpin of the same area)")
            }
            return ok
        }
    }

    func owner(_ id: Int, inUse: Bool) {

        withoutAccessPoints {     perVCPU.store(id, .inUse, inUse ? 1 : 0)

        }

    }

    func pointerChanging(owner: Int, by caller: Int) {

        withoutAccessPoints {
            if caller != owner && perVCPU.load(owner, .inUse) != 0 {
                engine.report(.vpaPointerChange, "vcpu\(caller) changes vcpu\(owner)'s area pointers while vcpu\(owner) runs the guest or writes its DTL")
            }

        }

    }

    func dtlReset(owner: Int) {

        withoutAccessPoints {     perVCPU.store(owner, .dtlEntriesWritten, 0)

        }

    }

    func dtlPublished(owner: Int, index: UInt64) {

        withoutAccessPoints {
            let written = perVCPU.load(owner, .dtlEntriesWritten)
            if written < index {
                engine.report(.dtlPublishOrder, "vcpu\(owner) publishes dtl_idx \(index) with \(written) entries written")
            }

        }

    }

    /// A guest read vcpu `owner`'s `vpa->dtl_idx` as `published` and then the
    /// entry below it as `entry` (both with the log generation in the upper
    /// 32 bits, `VPAVCPU.guestLog`): the entry must be the one counted, or a
    /// later one. An older one means the index became visible before the
    /// entry it counts (dtl-publish-order).
    func guestReadDTL(reader: Int, owner: Int, published: UInt64, entry: UInt64) {
        let (gen, idx) = (published >> 32, published & 0xffff_ffff)
        let (entryGen, entryIdx) = (entry >> 32, entry & 0xffff_ffff)
        guard entryGen < gen || (entryGen == gen && entryIdx < idx) else { return }
        withoutAccessPoints {
            let seen = entry == 0 ? "was never written" : "still holds entry \(entryIdx - 1)\(entryGen == gen ? "" : " of an older log")"
            engine.report(.dtlPublishOrder, "vcpu\(reader) reads vcpu\(owner)'s dtl_idx \(idx), but the slot of entry \(idx - 1) \(seen): the index became visible before the entry it counts")
        }
    }

    func hostWrite(owner: Int, _ k: VPAKind, _ va: Int, _ size: Int, by writer: Int, what: String) {
        withoutAccessPoints {
            if k == .dtl && what == "DTL entry" { perVCPU.add(owner, .dtlEntriesWritten, 1) }
            let r = records.withLock { $0 }
            let area = r.installedAreas[key(owner, k)]
            let at = "\(what) of vcpu\(owner) at \(hex(va))..<\(hex(va + size)) (pfn \(va / PAPR.pageSize))"
            guard let area, area.lowerBound <= va, va + size <= area.upperBound else {
                let pinnedText = area.map { "\(hex($0.lowerBound))..<\(hex($0.upperBound))" } ?? "none"
                engine.report(.vpaUnpinnedWrite, "\(at) is outside its pinned \(k) (pinned: \(pinnedText))")
                return
            }
            let pfn = va / PAPR.pageSize
            if !hostMM.pages.isInUse(pfn) {
                engine.report(.vpaUnpinnedWrite, "\(at): the page is free")
                return
            }
            if r.pins[pfn] == nil {
                engine.report(.vpaUnpinnedWrite, "\(at): KVM holds no pin on the page")
                return
            }
            // The area the host writes is the one the guest registered: the page
            // pinned at the hva its registered gpa translates to, inside the
            // registered offset and length.
            guard let reg = r.registeredFor[key(owner, k)] else { return }
            let (samePage, pinnedHVA) = isPage(of: reg.gpa, pfn * PAPR.pageSize + reg.gpa % PAPR.pageSize, r)
            let off = va % PAPR.pageSize, regOff = reg.gpa % PAPR.pageSize
            if !samePage || off < regOff || off + size > regOff + reg.len {
                engine.report(.vpaPinnedRegistered,
                              "\(at) (\(describe(hva: pinnedHVA))) is not in the \(k) vcpu\(owner) registered: gpa \(hex(reg.gpa))..<\(hex(reg.gpa + reg.len)) (gfn \(reg.gpa / PAPR.pageSize))")
            }
        }
    }

    /// `hcall-rc`: the H_PARAMETER rules every version of do_h_register_vpa()
    /// shares: a registration succeeds only for a cache-line-aligned area that
    /// fits in its page and is at least as long as its kind requires. (The
    /// H_RESOURCE rules depend on registration state and on the variant's
    /// notion of it: Tests/PPCTests/VPATests.swift checks them.)
    public func registrationReturned(_ sub: VPASubfunc, gpa: Int, len: Int, _ rc: HCallStatus) {
        withoutAccessPoints {
            guard rc == .success else { return }
            let minimum = [PAPR.lppacaSize, PAPR.dtlEntrySize, PAPR.regVPASize][sub.kind.rawValue]
            if gpa % PAPR.cacheLine != 0 || len > PAPR.pageSize - gpa % PAPR.pageSize || len < minimum {
                engine.report(.hcallRC, "H_REGISTER_VPA \(sub) at \(hex(gpa)) with length \(len) succeeded; PAPR wants H_PARAMETER")
            }
        }
    }

    /// End of run: the pins held are the installed areas' pages.
    public func checkBalance() {
        withoutAccessPoints {
            let (held, areas) = records.withLock { ($0.pins.values.reduce(0) { $0 + $1.count }, $0.installedAreas.count) }
            if held != areas {
                engine.report(.vpaPinBalance, "\(held) pins held at the end for \(areas) installed areas")
            }
        }
    }
}

extension Oracle {
    /// Seed 003's invariants.
    public static let vpaUnpinnedWrite = Oracle("vpa-unpinned-write", "every host write into a vcpu's VPA or DTL lies inside the area installed and pinned for it, in a page that is not free")
    public static let vpaPointerChange = Oracle("vpa-pointer-change", "a vcpu's area pointers change only by the vcpu itself, or while it neither runs the guest nor writes a DTL entry")
    public static let dtlPublishOrder = Oracle("dtl-publish-order", "dtl_idx is published only after the entry it counts was written")
    public static let vpaPinBalance = Oracle("vpa-pin-balance", "a page is never unpinned more often than pinned, and at the end the pins held are the installed areas' pages")
    public static let vpaPinnedRegistered = Oracle("vpa-pinned-registered", "the area kvmppc_update_vpa() installs, and every host write into a vcpu's area, lies in the page pinned at the hva the registered gpa translates to (memslots), inside the registered offset and length")
    public static let vpaRegistrationContract = Oracle("vpa-registration-contract", "PAPR's registration rules on the vcpu's state whenever vpa_update_lock is released: a DTL or SLB shadow registered (as vpa_is_registered() answers) only while the VPA is; a settled registration is the installed area; next_gpa/len well-formed; each H_REGISTER_VPA records exactly its request, or refuses it for the reason the state gives")
    public static let hcallRC = Oracle("hcall-rc", "H_REGISTER_VPA succeeds only for a cache-line-aligned area inside its page, long enough for its kind (PAPR's H_PARAMETER rules)")
}
