// SPDX-License-Identifier: GPL-2.0-only

/// Who filled a TLB entry (the oracle's record, not hardware state).
public enum TLBOwner: Equatable, Sendable, CustomStringConvertible {
    case none
    /// The vcpu's guest user mm, for guest process `guestASID`.
    case guestUser(vcpu: Int, guestASID: Int, gfn: Int)
    /// The vcpu's guest kernel mm, for guest process `guestASID` (0: an unmapped
    /// kseg0 page, the same translation in every guest process).
    case guestKernel(vcpu: Int, guestASID: Int, gfn: Int)
    case hostProcess(Int)

    public var raw: UInt64 {
        switch self {
        case .none: return 0
        case let .guestUser(v, a, g): return 1 | UInt64(v) << 4 | UInt64(a) << 16 | UInt64(g) << 32
        case let .hostProcess(p): return 2 | UInt64(p) << 4
        case let .guestKernel(v, a, g): return 3 | UInt64(v) << 4 | UInt64(a) << 16 | UInt64(g) << 32
        }
    }

    public init(raw: UInt64) {
        switch raw & 0xF {
        case 1: self = .guestUser(vcpu: Int((raw >> 4) & 0xFFF), guestASID: Int((raw >> 16) & 0xFFFF), gfn: Int(raw >> 32))
        case 2: self = .hostProcess(Int((raw >> 4) & 0xFFF))
        case 3: self = .guestKernel(vcpu: Int((raw >> 4) & 0xFFF), guestASID: Int((raw >> 16) & 0xFFFF), gfn: Int(raw >> 32))
        default: self = .none
        }
    }

    /// The gfn of a guest translation.
    public var gfn: Int? {
        switch self {
        case let .guestUser(_, _, g), let .guestKernel(_, _, g): return g
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: return "nobody"
        case let .guestUser(v, a, g): return "vcpu\(v) guest_user_mm, guest ASID \(a) (gfn \(g))"
        case let .guestKernel(v, 0, g): return "vcpu\(v) guest_kernel_mm, kseg0 (gfn \(g))"
        case let .guestKernel(v, a, g): return "vcpu\(v) guest_kernel_mm, guest ASID \(a) (gfn \(g))"
        case let .hostProcess(p): return "host process \(p)"
        }
    }
}
