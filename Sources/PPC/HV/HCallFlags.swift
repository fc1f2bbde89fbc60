// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// hcall flags (include/asm/hvcall.h) the model uses.
public struct HCallFlags: OptionSet, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let exact = HCallFlags(rawValue: 1 << 0)     // H_EXACT
    public static let avpn = HCallFlags(rawValue: 1 << 1)      // H_AVPN
    public static let local = HCallFlags(rawValue: 1 << 2)     // H_LOCAL
    public static let readOnly = HCallFlags(rawValue: 1 << 3)  // H_PROTECT's new PP: read-only
}
