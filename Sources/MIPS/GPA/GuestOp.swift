// SPDX-License-Identifier: GPL-2.0-only

/// One guest memory operation.
public struct GuestOp: Sendable, Equatable {
    public var gfn: Int
    public var write: Bool
    public init(gfn: Int, write: Bool) { self.gfn = gfn; self.write = write }
}
