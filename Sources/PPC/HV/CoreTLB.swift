// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// One translation cached in a core's TLB, tagged with the partition (LPID).
///
/// `slot` and `generation` are the model's record of where the translation came
/// from (the HPTE slot and its generation at fill time), for the oracle only;
/// hardware matches on (LPID, virtual page).
public struct PPCTLBEntry: Sendable, Equatable {
    public var lpid: Int
    public var vpn: Int
    public var gfn: Int
    public var pfn: Int
    public var writable: Bool
    public var slot: Int
    public var generation: UInt64
}

/// The TLB of one POWER7 physical core, shared by all its hardware threads.
///
/// `tlbiel` invalidates in this core only, `tlbie` (see `Book3SHV.tlbie`) in every
/// core. A fill happens together with the hardware page-table walk that produced
/// it (`withLock` around both), so an invalidation either precedes the walk (the
/// walk misses the cleared HPTE) or removes the filled entry.
///
/// Locking: a real mutex with no scheduling point inside (hardware TLB operations
/// are atomic with respect to each other).
public final class CoreTLB: @unchecked Sendable {
    public let core: Int
    public let size: Int
    struct State {
        var entries: [PPCTLBEntry?]
        var next = 0

        func lookup(lpid: Int, vpn: Int) -> PPCTLBEntry? {
            for e in entries { if let e, e.lpid == lpid, e.vpn == vpn { return e } }
            return nil
        }

        /// Inserts, replacing an entry for the same page, else a free one, else round-robin.
        mutating func insert(_ e: PPCTLBEntry) {
            if let i = entries.firstIndex(where: { $0.map { $0.lpid == e.lpid && $0.vpn == e.vpn } ?? false }) {
                entries[i] = e
                return
            }
            if let i = entries.firstIndex(where: { $0 == nil }) { entries[i] = e; return }
            entries[next] = e
            next = (next + 1) % entries.count
        }
    }
    private let state: Locked<State>

    init(core: Int, size: Int) {
        self.core = core
        self.size = size
        state = Locked(State(entries: Array(repeating: nil, count: size)))
    }

    /// A world reset in place (Catalog's `ResettableWorld`): empty, the
    /// round-robin victim back at entry 0, as `init` made it.
    func resetForReuse() {
        state.withLock { $0 = State(entries: Array(repeating: nil, count: size)) }
    }

    /// Runs `body` with the TLB held: lookups, the hardware walk and the fill.
    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }

    /// tlbiel of one page (RB = the page's VA, this LPID): this core only.
    func invalidatePage(lpid: Int, vpn: Int) {
        state.withLock { s in
            for i in s.entries.indices where s.entries[i].map({ $0.lpid == lpid && $0.vpn == vpn }) ?? false {
                s.entries[i] = nil
            }
        }
    }

    /// The 128-iteration `tlbiel` loop with IS = 0b10 (every entry of this LPID
    /// in every congruence class) of kvmppc_hv_entry.
    func flushPartition(lpid: Int) {
        state.withLock { s in
            for i in s.entries.indices where s.entries[i]?.lpid == lpid { s.entries[i] = nil }
        }
    }

    /// Test view.
    public var entries: [PPCTLBEntry] { state.withLock { $0.entries.compactMap { $0 } } }
}
