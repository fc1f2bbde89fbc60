// SPDX-License-Identifier: GPL-2.0-only

/// What a guest instruction does to memory.
public enum GuestAccessKind: Sendable, Equatable {
    case read
    /// A store of `value` (a fresh version number: a lost write shows).
    case write(UInt64)
    /// An instruction fetch (the NX huge page mitigation concerns these).
    case fetch

    public var isWrite: Bool { if case .write = self { return true } else { return false } }
    public var isFetch: Bool { self == .fetch }
}
