// SPDX-License-Identifier: GPL-2.0-only

/// Who filled a TLB entry (the oracle's record, not hardware state).
public enum TLBOwner: Equatable, Sendable, CustomStringConvertible {
    case none
    case guestUser(vcpu: Int, guestASID: Int, gfn: Int)
    case hostProcess(Int)

    public var raw: UInt64 {
        switch self {
        case .none: return 0
        case let .guestUser(v, a, g): return 1 | UInt64(v) << 4 | UInt64(a) << 16 | UInt64(g) << 32
        case let .hostProcess(p): return 2 | UInt64(p) << 4
        }
    }

    public init(raw: UInt64) {
        switch raw & 0xF {
        case 1: self = .guestUser(vcpu: Int((raw >> 4) & 0xFFF), guestASID: Int((raw >> 16) & 0xFFFF), gfn: Int(raw >> 32))
        case 2: self = .hostProcess(Int((raw >> 4) & 0xFFF))
        default: self = .none
        }
    }

    public var description: String {
        switch self {
        case .none: return "nobody"
        case let .guestUser(v, a, g): return "vcpu\(v) guest ASID \(a) (gfn \(g))"
        case let .hostProcess(p): return "host process \(p)"
        }
    }
}
