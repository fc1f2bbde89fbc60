// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The guest's hashed page table (`kvm->arch.hpt_virt`, 16-byte HPTEs in groups of
/// 8), with the reverse-map entry of each slot (`kvm->arch.revmap[i].guest_rpte`),
/// as arch/powerpc/kvm/book3s_hv_rm_mmu.c keeps it on a POWER7 host with MMU
/// notifiers.
///
/// HPTE words in the model (the fields the protocols use; the real layout packs
/// more):
/// - `v` (hpte[0]): `HPTE_V_VALID`, `HPTE_V_ABSENT` (paged out by the host; the
///   next guest access takes a hypervisor fault), `HPTE_V_HVLOCK` (the software
///   lock bit, `try_lock_hpte()`), and the AVPN (the guest virtual page).
/// - `r` (hpte[1]): host pfn, PP (writable), R and C.
/// - `guest_rpte` (revmap): what the guest asked for: gfn and PP.
///
/// Locking: a slot's `v` and `r` change only under its HVLOCK bit, except that
/// the hardware sets R and C while it walks (an atomic OR here). The hardware walk
/// takes no lock.
public final class HPT: @unchecked Sendable {
    public static let valid: UInt64 = 1 << 0
    public static let absent: UInt64 = 1 << 1
    public static let hvlock: UInt64 = 1 << 2
    static let avpnShift: UInt64 = 8
    public static let rw: UInt64 = 1 << 0
    public static let referenced: UInt64 = 1 << 1
    public static let changed: UInt64 = 1 << 2
    static let pfnShift: UInt64 = 12

    public static let hpteGroupSize = 8
    public let npte: Int
    let engine: SimEngine
    /// Per slot: hpte[0] (v), hpte[1] (r), the revmap's guest_rpte.
    private enum Field: Int, CaseIterable { case v, r, guestRpte }
    private let words: AtomicRecords<Field>

    public init(groups: Int, engine: SimEngine) {
        npte = groups * HPT.hpteGroupSize
        self.engine = engine
        words = AtomicRecords(count: npte, kernel: true)
    }
    deinit { words.free() }

    public var groups: Int { npte / HPT.hpteGroupSize }

    /// The primary hash group of a guest virtual page (hpt_hash() reduced).
    public func group(of vpn: Int) -> Int { (vpn &* 0x9E37_79B9) % groups }

    public func v(_ i: Int) -> UInt64 { words.load(i, .v) }
    public func r(_ i: Int) -> UInt64 { words.load(i, .r) }
    public func guestRpte(_ i: Int) -> UInt64 { words.load(i, .guestRpte) }
    func setV(_ i: Int, _ x: UInt64) { words.store(i, .v, x) }
    func setR(_ i: Int, _ x: UInt64) { words.store(i, .r, x) }
    func setGuestRpte(_ i: Int, _ x: UInt64) { words.store(i, .guestRpte, x) }
    /// The hardware's reference/change bit update.
    func orR(_ i: Int, _ bits: UInt64) { words.fetchOr(i, .r, bits) }

    public static func makeV(vpn: Int, flags: UInt64) -> UInt64 { UInt64(vpn) << avpnShift | flags }
    public static func avpn(_ v: UInt64) -> Int { Int(v >> avpnShift) }
    public static func makeR(pfn: Int, writable: Bool) -> UInt64 { UInt64(pfn) << pfnShift | (writable ? rw : 0) }
    public static func pfn(_ r: UInt64) -> Int { Int(r >> pfnShift) }
    public static func isWritable(_ r: UInt64) -> Bool { r & rw != 0 }
    /// hpte_make_readonly().
    public static func makeReadonly(_ r: UInt64) -> UInt64 { r & ~rw }

    /// try_lock_hpte(hpte, HPTE_V_HVLOCK): one attempt, no spinning.
    public func tryLock(_ i: Int) -> Bool {
        let old = v(i)
        return old & HPT.hvlock == 0 && words.cas(i, .v, old, old | HPT.hvlock)
    }

    /// `while (!try_lock_hpte(hpte, HPTE_V_HVLOCK)) cpu_relax();`
    public func lock(_ i: Int) {
        // One point per acquire in both modes (the attempts are not access
        // points: a recording of real threads then lines up with a replay).
        if engine.mode == .parallel {                               // as SpinLock.lock
            withoutAccessPoints { while !tryLock(i) { engine.spinUntil { v(i) & HPT.hvlock == 0 } } }
            engine.notePass("try_lock_hpte")
            return
        }
        while true {
            engine.waitUntil("try_lock_hpte") { [self] in v(i) & HPT.hvlock == 0 }
            if withoutAccessPoints({ tryLock(i) }) { return }
        }
    }

    /// Whether slot `i`'s HVLOCK bit is set (lockdep for "HPTE locked" rules:
    /// a bit lock has no owner to check).
    public func isLocked(_ i: Int) -> Bool { v(i) & HPT.hvlock != 0 }

    /// unlock_hpte(hpte, hpte_v): writes the first word with the lock bit clear.
    public func unlock(_ i: Int, _ newV: UInt64) { setV(i, newV & ~HPT.hvlock) }

    /// Clears every HPTE (the memset of kvmppc_alloc_reset_hpt()).
    func clearAll() { for i in 0..<npte { words.store(i, .v, 0); words.store(i, .r, 0); words.store(i, .guestRpte, 0) } }
}
