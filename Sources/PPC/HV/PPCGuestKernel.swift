// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The guest kernel's side of the HPT (a Linux pseries guest, reduced): for each
/// guest virtual page, the gfn it maps, whether the mapping is writable, and the
/// HPTE slot the guest entered for it (the hash-slot bits of a Linux PTE).
///
/// The guest keeps its own rules: mapping changes of one page are serialised by
/// that page's lock (the guest's PTE lock); a page is written only while its
/// mapping is writable; H_LOCAL is the guest's choice per call.
public final class PPCGuestKernel: @unchecked Sendable {
    let hv: Book3SHV
    public let vpns: Int
    let gfns: Int
    let locks: [SpinLock]
    /// Per vpn: the gfn it maps, its HPTE slot + 1 (0: none), writable.
    private enum Field: Int, CaseIterable { case gfn, slotPlusOne, writable }
    private let words: AtomicRecords<Field>

    public init(hv: Book3SHV, vpns: Int, gfns: Int) {
        self.hv = hv
        self.vpns = vpns
        self.gfns = gfns
        locks = (0..<vpns).map { _ in SpinLock("guest pte lock", engine: hv.engine) }
        words = AtomicRecords(count: vpns)
        for v in 0..<vpns { words.store(v, .gfn, UInt64(v % gfns)); words.store(v, .writable, 1) }
    }
    deinit { words.free() }

    func gfn(_ vpn: Int) -> Int { Int(words.load(vpn, .gfn)) }
    func slot(_ vpn: Int) -> Int? { let s = words.load(vpn, .slotPlusOne); return s == 0 ? nil : Int(s - 1) }
    func writable(_ vpn: Int) -> Bool { words.load(vpn, .writable) != 0 }

    /// A load or store; the guest's page fault (hash_page: H_ENTER) when it has
    /// no HPTE for the page.
    public func access(_ vcpu: PPCVCPU, vpn: Int, write: Bool) {
        let w = write && writable(vpn)
        if !hv.guestAccess(vcpu, vpn: vpn, write: w) {
            fault(vcpu, vpn: vpn)
        }
    }

    /// hash_page() reduced: enter an HPTE for the page unless one is there.
    func fault(_ vcpu: PPCVCPU, vpn: Int) {
        locks[vpn].lock()
        defer { locks[vpn].unlock() }
        if let s = slot(vpn), HPT.avpn(hv.hpt.v(s)) == vpn, hv.hpt.v(s) & (HPT.valid | HPT.absent) != 0 { return }
        let group = hv.hpt.group(of: vpn) * HPT.hpteGroupSize
        let (st, index) = hv.kvmppcDoHEnter(vcpu, flags: [], pteIndex: group, vpn: vpn, gfn: gfn(vpn), writable: writable(vpn))
        if st == .success { words.store(vpn, .slotPlusOne, UInt64(index + 1)) }
    }

    /// Unmap the page (H_REMOVE), optionally pointing it at another gfn afterwards.
    public func remove(_ vcpu: PPCVCPU, vpn: Int, local: Bool, remapTo newGfn: Int?) {
        locks[vpn].lock()
        defer { locks[vpn].unlock() }
        if let s = slot(vpn) {
            _ = hv.kvmppcHRemove(vcpu, flags: local ? [.avpn, .local] : [.avpn], pteIndex: s, avpn: vpn)
            words.store(vpn, .slotPlusOne, 0)
        }
        words.store(vpn, .writable, 1)
        if let newGfn { words.store(vpn, .gfn, UInt64(newGfn % gfns)) }
    }

    /// Write-protect the page (H_PROTECT to read-only).
    public func protect(_ vcpu: PPCVCPU, vpn: Int, local: Bool) {
        locks[vpn].lock()
        defer { locks[vpn].unlock() }
        guard writable(vpn) else { return }
        words.store(vpn, .writable, 0)
        if let s = slot(vpn) { _ = hv.kvmppcHProtect(vcpu, flags: local ? [.avpn, .local] : [.avpn], pteIndex: s, avpn: vpn) }
    }

    /// Unmap up to four pages with one H_BULK_REMOVE (page locks taken in order).
    public func bulkRemove(_ vcpu: PPCVCPU, vpns: [Int]) {
        let pages = Array(Set(vpns)).sorted().prefix(4)
        for p in pages { locks[p].lock() }
        let reqs = pages.compactMap { p in slot(p).map { (pteIndex: $0, avpn: p) } }
        if !reqs.isEmpty { _ = hv.kvmppcHBulkRemove(vcpu, reqs) }
        for p in pages { words.store(p, .slotPlusOne, 0); words.store(p, .writable, 1) }
        for p in pages.reversed() { locks[p].unlock() }
    }
}
