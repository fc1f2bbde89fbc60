// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// The generic part of `struct kvm_vcpu` that other CPUs touch: `mode` and
/// `requests` (include/linux/kvm_host.h).
///
/// Protocol (kvm_vcpu_exiting_guest_mode / kvm_make_all_cpus_request): a vcpu sets
/// `mode = IN_GUEST_MODE`, then smp_mb(), then checks `requests`; a requester sets
/// the request bit, then smp_mb(), then reads `mode` and, for a vcpu in guest mode,
/// waits for it to leave guest mode (the IPI acknowledgement). Either the vcpu sees
/// the request before entering, or the requester sees it in guest mode and waits.
public final class VCPUState: @unchecked Sendable {
    public let id: Int
    /// The host CPU this vcpu is loaded on (vcpu->cpu).
    public let cpu: Int
    private enum Field: Int, CaseIterable { case mode, requests, exits }
    private let words = AtomicRecords<Field>(count: 1, kernel: true)

    public enum Mode: UInt64 { case outsideGuestMode = 0, inGuestMode = 1, exitingGuestMode = 2 }
    /// KVM_REQ_TLB_FLUSH.
    public static let reqTLBFlush: UInt64 = 1 << 0

    public init(id: Int, cpu: Int) { self.id = id; self.cpu = cpu }
    deinit { words.free() }

    public var mode: Mode { Mode(rawValue: words.load(0, .mode)) ?? .outsideGuestMode }
    public var requests: UInt64 { words.load(0, .requests) }
    /// Guest exits so far: a requester waiting for an IPI ack watches this change.
    public var exits: UInt64 { words.load(0, .exits) }

    /// kvm_make_request().
    public func makeRequest(_ r: UInt64) { words.fetchOr(0, .requests, r) }

    /// kvm_check_request(): test and clear.
    public func checkRequest(_ r: UInt64) -> Bool {
        while true {
            let cur = words.load(0, .requests)
            if cur & r == 0 { return false }
            if words.cas(0, .requests, cur, cur & ~r) { return true }
        }
    }

    /// The entry half of vcpu_enter_guest(): false when a request arrived and the
    /// entry must be cancelled.
    public func enterGuestMode() -> Bool {
        words.store(0, .mode, Mode.inGuestMode.rawValue)
        smp_mb()
        if words.load(0, .requests) != 0 {
            words.store(0, .mode, Mode.outsideGuestMode.rawValue)
            return false
        }
        return true
    }

    /// Guest exit: leaving guest mode acknowledges any pending IPI.
    public func exitGuestMode() {
        words.add(0, .exits, 1)
        words.store(0, .mode, Mode.outsideGuestMode.rawValue)
    }

    /// kvm_vcpu_exiting_guest_mode(): IN_GUEST_MODE -> EXITING_GUEST_MODE.
    public func exitingGuestMode() -> Mode {
        let cur = words.load(0, .mode)
        if cur == Mode.inGuestMode.rawValue { _ = words.cas(0, .mode, cur, Mode.exitingGuestMode.rawValue) }
        return Mode(rawValue: cur) ?? .outsideGuestMode
    }
}
