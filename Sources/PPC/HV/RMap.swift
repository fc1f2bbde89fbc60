// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The reverse map (`memslot->arch.rmap[]`): per gfn, the chain of HPTE slots that
/// map it, a lock bit (`lock_rmap()`, bit 63 of the rmap word in the kernel) and
/// the referenced bit harvested from removed HPTEs.
///
/// Locking: the chain and the referenced bit change only under the gfn's lock bit.
/// Never spin on an HPTE lock while holding an rmap lock (the kernel's ABBA rule:
/// kvm_unmap_rmapp() drops the rmap lock before it waits for an HPTE).
public final class RMap: @unchecked Sendable {
    static let lockBit: UInt64 = 1 << 63
    static let referencedBit: UInt64 = 1 << 62
    let engine: SimEngine
    let gfns: Int
    let chainWords: Int
    private let head: AtomicWords
    private let chain: AtomicWords

    init(gfns: Int, npte: Int, engine: SimEngine) {
        self.gfns = gfns
        self.engine = engine
        chainWords = (npte + 63) / 64
        head = AtomicWords(count: gfns, kernel: true)
        chain = AtomicWords(count: gfns * chainWords, kernel: true)
    }
    deinit { head.free(); chain.free() }

    /// lock_rmap().
    func lock(_ gfn: Int) {
        // One point per acquire in both modes, as HPT.lock.
        if engine.mode == .parallel {                               // as SpinLock.lock
            withoutAccessPoints {
                while true {
                    let old = head.load(gfn)
                    if old & RMap.lockBit == 0 && head.cas(gfn, old, old | RMap.lockBit) { break }
                    engine.spinUntil { [head] in head.load(gfn) & RMap.lockBit == 0 }
                }
            }
            engine.notePass("lock_rmap")
            return
        }
        while true {
            engine.waitUntil("lock_rmap") { [head] in head.load(gfn) & RMap.lockBit == 0 }
            if withoutAccessPoints({ () -> Bool in
                let old = head.load(gfn)
                return old & RMap.lockBit == 0 && head.cas(gfn, old, old | RMap.lockBit)
            }) { return }
        }
    }

    /// unlock_rmap().
    func unlock(_ gfn: Int) {
        let old = head.load(gfn)
        precondition(old & RMap.lockBit != 0, "unlock_rmap of an unlocked rmap")
        head.store(gfn, old & ~RMap.lockBit)
    }

    /// Whether `gfn`'s rmap lock bit is set.
    func isLocked(_ gfn: Int) -> Bool { head.load(gfn) & RMap.lockBit != 0 }

    /// lockdep for "rmap lock held": a bit lock, so only that it is taken.
    @inline(__always) func assertLocked(_ gfn: Int, _ function: StaticString) {
        engine.lockdepAssert(isLocked(gfn), "\(function) on gfn \(gfn) without its rmap lock")
    }

    /// kvmppc_add_revmap_chain() without its unlock_rmap(); rmap lock held.
    func add(_ gfn: Int, slot: Int) { assertLocked(gfn, "kvmppc_add_revmap_chain()"); chain.fetchOr(gfn * chainWords + slot / 64, 1 << UInt64(slot % 64)) }

    /// Unlinks `slot` (remove_revmap_chain(), kvm_unmap_rmapp()); rmap lock held.
    func remove(_ gfn: Int, slot: Int) {
        assertLocked(gfn, "remove_revmap_chain()")
        let w = gfn * chainWords + slot / 64
        chain.store(w, chain.load(w) & ~(1 << UInt64(slot % 64)))
    }

    /// The first slot of the chain (`*rmapp & KVMPPC_RMAP_INDEX`), nil when empty.
    func first(_ gfn: Int) -> Int? {
        for w in 0..<chainWords {
            let bits = chain.load(gfn * chainWords + w)
            if bits != 0 { return w * 64 + bits.trailingZeroBitCount }
        }
        return nil
    }

    func slots(_ gfn: Int) -> [Int] {
        var out: [Int] = []
        for w in 0..<chainWords {
            var bits = chain.load(gfn * chainWords + w)
            while bits != 0 { out.append(w * 64 + bits.trailingZeroBitCount); bits &= bits - 1 }
        }
        return out
    }

    /// `*rmap |= KVMPPC_RMAP_REFERENCED`; rmap lock held.
    func setReferenced(_ gfn: Int) { assertLocked(gfn, "KVMPPC_RMAP_REFERENCED update"); head.fetchOr(gfn, RMap.referencedBit) }

    /// Tests and clears the referenced bit; rmap lock held.
    func testAndClearReferenced(_ gfn: Int) -> Bool {
        assertLocked(gfn, "KVMPPC_RMAP_REFERENCED test")
        let old = head.load(gfn)
        guard old & RMap.referencedBit != 0 else { return false }
        head.store(gfn, old & ~RMap.referencedBit)
        return true
    }

    /// Empties every chain (model of kvmppc_rmap_reset()); no rmap may be locked.
    func clearAll() {
        for g in 0..<gfns { head.store(g, 0) }
        for w in 0..<(gfns * chainWords) { chain.store(w, 0) }
    }
}
