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
/// - `vpa-pinned-registered`: the area kvmppc_update_vpa() installs is the page
///   and offset of the guest address the registration names when it installs.
///
/// Locking: a mutex around the area table; atomics for the rest.
public final class VPAOracle: @unchecked Sendable {
    /// The oracles this checker owns.
    public static let oracles: [Oracle] = [.vpaUnpinnedWrite, .vpaPointerChange, .dtlPublishOrder, .vpaPinBalance, .vpaPinnedRegistered, .hcallRC]
    let engine: SimEngine
    let hostMM: HostMM
    private let installedAreas = Locked<[Int: Range<Int>]>([:])
    private let pins = Locked<[Int: Int]>([:])
    /// The guest frame each pinned page was pinned for (kvmppc_pin_guest_page()).
    private let pinnedFor = Locked<[Int: Int]>([:])
    /// Per vcpu: in use (running or writing a DTL entry), DTL entries written.
    private enum Field: Int, CaseIterable { case inUse, dtlEntriesWritten }
    private let perVCPU: AtomicRecords<Field>

    init(engine: SimEngine, hostMM: HostMM, vcpus: Int) {
        self.engine = engine
        self.hostMM = hostMM
        perVCPU = AtomicRecords(count: vcpus)
    }
    deinit { perVCPU.free() }

    func key(_ owner: Int, _ k: VPAKind) -> Int { 3 * owner + k.rawValue }

    /// kvmppc_update_vpa() is about to install `va` for `owner`'s area `k`, whose
    /// registration (`next_gpa`, unchanged since the update took it) names `gpa`:
    /// `va` must be that gpa's offset in a page pinned for that gpa's frame.
    /// (Not the host's current page for it: a zap may unmap a pinned page, and
    /// KVM keeps the page it pinned.)
    func installing(owner: Int, _ k: VPAKind, va: KernelVA, registeredGPA gpa: Int) {
        withoutAccessPoints {
            let forGfn = pinnedFor.withLock { $0[va / PAPR.pageSize] }
            if forGfn != gpa / PAPR.pageSize || va % PAPR.pageSize != gpa % PAPR.pageSize {
                engine.report(.vpaPinnedRegistered,
                              "vcpu\(owner)'s \(k) is installed at \(hex(va)) (pinned for gfn \(forGfn.map(String.init) ?? "none")), but its registration names gpa \(hex(gpa))")
            }
        }
    }

    func installed(owner: Int, _ k: VPAKind, _ area: Range<Int>) {

        withoutAccessPoints {     installedAreas.withLock { $0[key(owner, k)] = area }

        }

    }
    func uninstalled(owner: Int, _ k: VPAKind) {
        withoutAccessPoints {     _ = installedAreas.withLock { $0.removeValue(forKey: key(owner, k)) }
        }
    }
    public func installedArea(owner: Int, _ k: VPAKind) -> Range<Int>? { installedAreas.withLock { $0[key(owner, k)] } }

    /// `pfn` was pinned as the page of guest frame `gfn`.
    func pinned(_ pfn: Int, gfn: Int) {
        withoutAccessPoints {
            pins.withLock { $0[pfn, default: 0] += 1 }
            pinnedFor.withLock { $0[pfn] = gfn }
        }
    }

    /// Returns false (and reports) when `pfn` is not pinned.
    func unpinned(_ pfn: Int) -> Bool {
        withoutAccessPoints {
            let ok: Bool = pins.withLock {
                guard let n = $0[pfn], n > 0 else { return false }
                $0[pfn] = n == 1 ? nil : n - 1
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

    func hostWrite(owner: Int, _ k: VPAKind, _ va: Int, _ size: Int, by writer: Int, what: String) {

        withoutAccessPoints {
            if k == .dtl && what == "DTL entry" { perVCPU.add(owner, .dtlEntriesWritten, 1) }
            let area = installedArea(owner: owner, k)
            let at = "\(what) of vcpu\(owner) at \(hex(va))..<\(hex(va + size)) (pfn \(va / PAPR.pageSize))"
            guard let area, area.lowerBound <= va, va + size <= area.upperBound else {
                let pinnedText = area.map { "\(hex($0.lowerBound))..<\(hex($0.upperBound))" } ?? "none"
                engine.report(.vpaUnpinnedWrite, "\(at) is outside its pinned \(k) (pinned: \(pinnedText))")
                return
            }
            if !hostMM.pages.isInUse(va / PAPR.pageSize) {
                engine.report(.vpaUnpinnedWrite, "\(at): the page is free")
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
            let held = pins.withLock { $0.values.reduce(0, +) }
            let areas = installedAreas.withLock { $0.count }
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
    public static let vpaPinnedRegistered = Oracle("vpa-pinned-registered", "the area kvmppc_update_vpa() pins and installs is the one the vcpu's registration names")
    public static let hcallRC = Oracle("hcall-rc", "H_REGISTER_VPA succeeds only for a cache-line-aligned area inside its page, long enough for its kind (PAPR's H_PARAMETER rules)")
}
