// SPDX-License-Identifier: GPL-2.0-only

/// A bad flag, scenario file or trace file: one line for the user, exit status 2.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
