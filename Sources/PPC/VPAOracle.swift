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
///
/// Locking: a mutex around the area table; atomics for the rest.
public final class VPAOracle: @unchecked Sendable {
    let engine: SimEngine
    let hostMM: HostMM
    private let installedAreas = Locked<[Int: Range<Int>]>([:])
    private let pins = Locked<[Int: Int]>([:])
    /// Per vcpu: in use (running or writing a DTL entry), DTL entries written.
    private let words: AtomicWords

    init(engine: SimEngine, hostMM: HostMM, vcpus: Int) {
        self.engine = engine
        self.hostMM = hostMM
        words = AtomicWords(count: 2 * vcpus)
    }
    deinit { words.free() }

    func key(_ owner: Int, _ k: VPAKind) -> Int { 3 * owner + k.rawValue }

    func installed(owner: Int, _ k: VPAKind, _ area: Range<Int>) { installedAreas.withLock { $0[key(owner, k)] = area } }
    func uninstalled(owner: Int, _ k: VPAKind) { _ = installedAreas.withLock { $0.removeValue(forKey: key(owner, k)) } }
    public func installedArea(owner: Int, _ k: VPAKind) -> Range<Int>? { installedAreas.withLock { $0[key(owner, k)] } }

    func pinned(_ pfn: Int) { pins.withLock { $0[pfn, default: 0] += 1 } }

    /// Returns false (and reports) when `pfn` is not pinned.
    func unpinned(_ pfn: Int) -> Bool {
        let ok: Bool = pins.withLock {
            guard let n = $0[pfn], n > 0 else { return false }
            $0[pfn] = n == 1 ? nil : n - 1
            return true
        }
        if !ok { engine.report(oracle: "vpa-pin-balance", "pfn \(pfn) unpinned but not pinned (a second unpin of the same area)") }
        return ok
    }

    func owner(_ id: Int, inUse: Bool) { words.store(2 * id, inUse ? 1 : 0) }

    func pointerChanging(owner: Int, by caller: Int) {
        if caller != owner && words.load(2 * owner) != 0 {
            engine.report(oracle: "vpa-pointer-change", "vcpu\(caller) changes vcpu\(owner)'s area pointers while vcpu\(owner) runs the guest or writes its DTL")
        }
    }

    func dtlReset(owner: Int) { words.store(2 * owner + 1, 0) }

    func dtlPublished(owner: Int, index: UInt64) {
        if words.load(2 * owner + 1) < index {
            engine.report(oracle: "dtl-publish-order", "vcpu\(owner) publishes dtl_idx \(index) with \(words.load(2 * owner + 1)) entries written")
        }
    }

    func hostWrite(owner: Int, _ k: VPAKind, _ va: Int, _ size: Int, by writer: Int, what: String) {
        if k == .dtl && what == "DTL entry" { words.add(2 * owner + 1, 1) }
        let area = installedArea(owner: owner, k)
        let at = "\(what) of vcpu\(owner) at \(hex(va))..<\(hex(va + size)) (pfn \(va / PAPR.pageSize))"
        guard let area, area.lowerBound <= va, va + size <= area.upperBound else {
            let pinnedText = area.map { "\(hex($0.lowerBound))..<\(hex($0.upperBound))" } ?? "none"
            engine.report(oracle: "vpa-unpinned-write", "\(at) is outside its pinned \(k) (pinned: \(pinnedText))")
            return
        }
        if !hostMM.pages.isInUse(va / PAPR.pageSize) {
            engine.report(oracle: "vpa-unpinned-write", "\(at): the page is free")
        }
    }

    /// End of run: the pins held are the installed areas' pages.
    public func checkBalance() {
        let held = pins.withLock { $0.values.reduce(0, +) }
        let areas = installedAreas.withLock { $0.count }
        if held != areas {
            engine.report(oracle: "vpa-pin-balance", "\(held) pins held at the end for \(areas) installed areas")
        }
    }
}
