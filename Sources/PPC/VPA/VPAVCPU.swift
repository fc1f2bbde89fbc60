// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

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
/// written only by the owner, outside the guest. Pre-fix (v3.4): no lock; any
/// vcpu's H_REGISTER_VPA writes the pointers.
public final class VPAVCPU: @unchecked Sendable {
    public let id: Int
    let vpaUpdateLock: SpinLock
    /// patched: 3 x kvmppc_vpa, then dtl_ptr, dtl_index.
    /// pre-fix (v3.4): vpa, dtl, dtl_end, slb_shadow (v3.4 has no dtl_ptr or
    /// dtl_index: nothing writes its DTL).
    let words: AtomicWords
    static let dtlPtr = 3 * KVMPPCVPA.words
    static let dtlIndex = dtlPtr + 1
    static let preVPA = 0, preDTL = 1, preDTLEnd = 2, preSLB = 3

    /// What a guest reader of this vcpu's dispatch trace log sees (only when a
    /// world has one, `VPAWorld`'s `--dtl-reader 1`; nothing else observes it):
    /// word 0 is the VPA's `dtl_idx` as the guest reads it, word `1 + i % 8`
    /// the DTL entry of index `i`. Weakly ordered (the `pso` memory model puts
    /// the host's stores to them in its store buffer). The upper 32 bits of
    /// each word are a ghost field, the log's generation (`dtlGeneration`), so
    /// that a check can tell an entry of the current log from an older one
    /// (real entries differ by their timebase).
    public let guestLog: WeakWords?
    static let logIdx = 0
    static let logSlots = 8
    static func logEntry(_ index: UInt64) -> Int { 1 + Int(index % UInt64(logSlots)) }
    /// Ghost: how many times the owner restarted its DTL (`dtl_index = 0`). Owner only.
    var dtlGeneration: UInt64 = 1

    init(id: Int, engine: SimEngine, guestLog: Bool = false) {
        self.id = id
        vpaUpdateLock = SpinLock("spin_lock(&vcpu->arch.vpa_update_lock)", engine: engine)
        words = AtomicWords(count: 3 * KVMPPCVPA.words + 2, kernel: true)
        self.guestLog = guestLog ? WeakWords(count: 1 + Self.logSlots) : nil
    }
    deinit { words.free(); guestLog?.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): the ghost log
    /// generation as `init` set it. The vcpu's `kvmppc_vpa` words, DTL
    /// pointers, guest log and lock are words the world's `WorldMemory`
    /// restores.
    func resetForReuse() { dtlGeneration = 1 }

    func area(_ k: VPAKind) -> KVMPPCVPA { KVMPPCVPA(base: k.rawValue * KVMPPCVPA.words) }
    func load(_ i: Int) -> Int { Int(words.load(i)) }

    /// registered(area) (vpa_is_registered()): judged on the pending state.
    func isRegistered(_ k: VPAKind) -> Bool {
        let a = area(k)
        return load(a.updatePending) != 0 ? load(a.nextGPA) != 0 : load(a.pinnedAddr) != 0
    }
}
