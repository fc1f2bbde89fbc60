// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `vpa-registration-contract` (issue 20, class 4): the H_REGISTER_VPA
/// contract as an invariant of the vcpu's state, not of a return code.
///
/// The kernel text (book3s_hv.c, v3.8; the same in v3.6-v3.10):
///
/// - `vpa_is_registered()`: `if (vpap->update_pending) return vpap->next_gpa
///   != 0; return vpap->pinned_addr != NULL;` -- "registered" is the guest's
///   latest request while an update is pending, the installed area after.
/// - `do_h_register_vpa()`, under the target's `vpa_update_lock`:
///   `case H_VPA_REG_DTL: ... err = H_RESOURCE; if
///   (!vpa_is_registered(&tvcpu->arch.vpa)) break;` (the same for
///   `H_VPA_REG_SLB`); `case H_VPA_DEREG_VPA: err = H_RESOURCE; if
///   (vpa_is_registered(&tvcpu->arch.dtl) ||
///   vpa_is_registered(&tvcpu->arch.slb_shadow)) break;`; then `if (vpap) {
///   vpap->next_gpa = vpa; vpap->len = len; vpap->update_pending = 1; }`, with
///   `vpa = 0; len = 0;` for a deregistration and `len -= len % sizeof(struct
///   dtl_entry)` for a DTL.
/// - `kvmppc_update_vpa()`, by the owner, lock held on entry and exit but
///   dropped around the pin: `vpap->update_pending = 0;` only after the retry
///   loop has seen `gpa == vpap->next_gpa` with the lock held again, in the same
///   locked section as `vpap->pinned_addr = va; if (va) vpap->pinned_end = va +
///   vpap->len;` (`va` NULL for a deregistration, or when the area is "now too
///   short: unregister").
///
/// What that guarantees, at every release of `vpa_update_lock` (the states
/// another hcall or the owner's relock can see), with `registered(k)` the
/// oracle's own evaluation of vpa_is_registered() on the raw words:
///
/// 1. needs a VPA: `registered(DTL)` or `registered(SLB shadow)` implies
///    `registered(VPA)`. do_h_register_vpa() refuses the two transitions that
///    would break it (a DTL or SLB shadow without a VPA, the VPA away under a
///    DTL or SLB shadow); kvmppc_update_vpa() leaves `registered()` as it was,
///    as long as it can pin the registered area (see 2).
/// 2. a settled registration is installed (`update_pending == 0`):
///    `next_gpa == 0` implies `pinned_addr == NULL`; `next_gpa != 0` implies
///    `pinned_addr != NULL` and `pinned_end == pinned_addr + len`. The kernel
///    itself breaks the middle clause when kvmppc_pin_guest_page() fails (no
///    memslot) or the page is shorter than `len`: it unregisters the area
///    alone, and then rule 1 can break too (harmlessly: the DTL writer checks
///    the VPA). These worlds never meet that for an area the hcall accepted
///    (fixed memslots; the hcall pinned the same page to read the length and
///    checked `len > nb`), so here it is a violation; in `patched` (a fresh,
///    unlocked read of `next_gpa` pinned) the A -> B -> A race of vpa.md meets it.
/// 3. well-formed requests: `next_gpa == 0` exactly when `len == 0`; a
///    registered `next_gpa` is cache-line aligned, its `len` fits in the page and
///    is at least the kind's minimum (VPA 640, DTL 48 and whole entries, SLB
///    shadow `sizeof(struct reg_vpa)`).
/// 4. each H_REGISTER_VPA, at the end of its locked section: the return code
///    is the one the state gives (H_RESOURCE exactly when rule 1 would break,
///    H_PARAMETER for a VPA under 640 or DTL under 48 bytes), and a success has
///    recorded exactly the guest's request in the area of its kind (`next_gpa`
///    the hcall's address, 0 to deregister; `len` the guest's length word,
///    rounded down to whole DTL entries, 0 to deregister; `update_pending`).
///
/// v3.4 (pre-fix) has no update protocol: `registered(k)` is its pointer set,
/// checked for rule 1 only after each do_h_register_vpa(), and only in
/// deterministic mode (v3.4 writes the pointers with no lock, so on real
/// threads the oracle cannot read the three of them as one state). v3.4 had the
/// rule (`if (flags >= 2 && !tvcpu->arch.vpa) return H_RESOURCE;` and
/// `if (tvcpu->arch.slb_shadow || tvcpu->arch.dtl) return H_RESOURCE;`), but
/// tests the VPA before kvmppc_pin_guest_page(), which sleeps, and sets the
/// pointer after it.
///
/// The model calls the checks with the target's `vpa_update_lock` held (every
/// writer of these words holds it), so they are exact on real threads too. The
/// checks do not assert the lock: the kernel has no lockdep assertion there, and
/// a model that drops the lock must be caught by what it breaks.
extension VPAOracle {
    /// The raw `struct kvmppc_vpa` words of one area.
    struct AreaWords: CustomStringConvertible {
        var nextGPA, len, pending, pinnedAddr, pinnedEnd: Int
        /// vpa_is_registered(), the oracle's own evaluation.
        var registered: Bool { pending != 0 ? nextGPA != 0 : pinnedAddr != 0 }
        var description: String {
            "next_gpa \(hex(nextGPA)) len \(len) update_pending \(pending) pinned_addr \(hex(pinnedAddr))"
        }
    }

    func words(_ t: VPAVCPU, _ k: VPAKind) -> AreaWords {
        let a = t.area(k)
        return AreaWords(nextGPA: t.load(a.nextGPA), len: t.load(a.len), pending: t.load(a.updatePending),
                         pinnedAddr: t.load(a.pinnedAddr), pinnedEnd: t.load(a.pinnedEnd))
    }

    /// The smallest registered length of each kind (seed 003).
    static func minimumLength(_ k: VPAKind) -> Int { [PAPR.lppacaSize, PAPR.dtlEntrySize, PAPR.regVPASize][k.rawValue] }

    /// Rules 1-3 on `t`'s state; the first broken one, or nil.
    func contractViolation(_ t: VPAVCPU) -> String? {
        let w = VPAKind.allCases.map { words(t, $0) }
        for k in VPAKind.allCases {
            let a = w[k.rawValue]
            var name: String { "vcpu\(t.id)'s \(k)" }                 // built only to report
            // 3. well-formed requests.
            if (a.nextGPA == 0) != (a.len == 0) {
                return "\(name): \(a) (next_gpa and len are set and cleared together)"
            }
            if a.nextGPA != 0 {
                let off = a.nextGPA % PAPR.pageSize
                if a.nextGPA % PAPR.cacheLine != 0 || a.len > PAPR.pageSize - off || a.len < Self.minimumLength(k)
                    || (k == .dtl && a.len % PAPR.dtlEntrySize != 0) {
                    return "\(name) registers a malformed area: \(a)"
                }
            }
            // 2. a settled registration is installed.
            if a.pending == 0 {
                if a.nextGPA == 0 && a.pinnedAddr != 0 {
                    return "\(name): update_pending is clear and next_gpa 0, but an area is still installed (\(a))"
                }
                if a.nextGPA != 0 && a.pinnedAddr == 0 {
                    return "\(name): update_pending is clear and next_gpa \(hex(a.nextGPA)), but nothing is installed (\(a))"
                }
                if a.nextGPA != 0 && a.pinnedEnd != a.pinnedAddr + a.len {
                    return "\(name): installed \(hex(a.pinnedAddr))..<\(hex(a.pinnedEnd)), but its registration has len \(a.len)"
                }
            }
        }
        // 1. a DTL or SLB shadow needs a VPA.
        let vpa = w[VPAKind.vpa.rawValue]
        for k in [VPAKind.dtl, .slbShadow] where w[k.rawValue].registered && !vpa.registered {
            return "vcpu\(t.id)'s \(k) is registered (\(w[k.rawValue])) while its VPA is not (\(vpa))"
        }
        return nil
    }

    /// `t`'s `vpa_update_lock` (held by the caller) is about to be released:
    /// rules 1-3 on the state it publishes.
    func registrationPublished(_ t: VPAVCPU) {
        withoutAccessPoints {
            if let v = contractViolation(t) { engine.report(.vpaRegistrationContract, v) }
        }
    }

    /// The end of an H_REGISTER_VPA's locked section (seed 003), `t`'s
    /// `vpa_update_lock` held: rule 4 for the call (`gpa` the hcall's address,
    /// `rc` what it is about to return), then rules 1-3.
    func hcallRecorded(_ sub: VPASubfunc, _ t: VPAVCPU, gpa: Int, _ rc: HCallStatus) {
        withoutAccessPoints {
            let lengthWord = sub.isRegister ? guestLengths.withLock { $0[gpa] ?? 0 } : 0
            let w = VPAKind.allCases.map { words(t, $0) }
            let vpa = w[VPAKind.vpa.rawValue], dtl = w[VPAKind.dtl.rawValue], slb = w[VPAKind.slbShadow.rawValue]
            let expected: HCallStatus
            switch sub {
            case .regVPA: expected = lengthWord < PAPR.lppacaSize ? .parameter : .success
            case .regDTL: expected = lengthWord < PAPR.dtlEntrySize ? .parameter : vpa.registered ? .success : .resource
            case .regSLB: expected = vpa.registered ? .success : .resource
            case .deregVPA: expected = dtl.registered || slb.registered ? .resource : .success
            case .deregDTL, .deregSLB: expected = .success
            }
            if rc != expected {
                let state = [("VPA", vpa), ("DTL", dtl), ("SLB shadow", slb)].map { "\($0.0) \($0.1.registered ? "registered" : "not registered")" }
                    .joined(separator: ", ")
                engine.report(.vpaRegistrationContract,
                              "H_REGISTER_VPA \(sub) for vcpu\(t.id) returns \(rc), but the state gives \(expected) (\(state))")
                return
            }
            if rc == .success {
                let a = w[sub.kind.rawValue]
                let wantGPA = sub.isRegister ? gpa : 0
                let wantLen = !sub.isRegister ? 0 : sub.kind == .dtl ? lengthWord - lengthWord % PAPR.dtlEntrySize : lengthWord
                if a.nextGPA != wantGPA || a.len != wantLen || a.pending == 0 {
                    engine.report(.vpaRegistrationContract,
                                  "H_REGISTER_VPA \(sub) for vcpu\(t.id) at \(hex(gpa)) succeeds, but its \(sub.kind) records \(a), not next_gpa \(hex(wantGPA)) len \(wantLen) pending")
                    return
                }
            }
            if let v = contractViolation(t) { engine.report(.vpaRegistrationContract, v) }
        }
    }

    /// v3.4 after do_h_register_vpa() (no lock): rule 1 on the pointers
    /// (`vpa`, `dtl`, `slb_shadow`), deterministic mode only.
    func pointersPublished(_ t: VPAVCPU) {
        guard engine.mode == .deterministic else { return }
        withoutAccessPoints {
            let vpa = t.load(VPAVCPU.preVPA)
            for (k, index) in [(VPAKind.dtl, VPAVCPU.preDTL), (.slbShadow, VPAVCPU.preSLB)] where t.load(index) != 0 && vpa == 0 {
                engine.report(.vpaRegistrationContract,
                              "vcpu\(t.id)'s \(k) is registered (\(k == .dtl ? "dtl" : "slb_shadow") = \(hex(t.load(index)))) while its VPA is not (vpa = NULL; v3.4 pointers)")
                return
            }
        }
    }
}
