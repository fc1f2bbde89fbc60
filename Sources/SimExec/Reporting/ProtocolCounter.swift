// SPDX-License-Identifier: GPL-2.0-only

/// A protocol counter a world reports (TLB flushes at guest entry, `tlbie` vs.
/// `tlbiel`, HPTE faults): declared once beside the code that counts it; the
/// runner sums each over the schedules of a run into `counters` in `--json`.
public struct ProtocolCounter: Sendable, Hashable, CustomStringConvertible {
    /// The name reports carry ("tlbie").
    public let name: String
    /// What is counted, one line.
    public let meaning: String

    public init(_ name: String, _ meaning: String) { self.name = name; self.meaning = meaning }

    public var description: String { name }
    public static func == (a: ProtocolCounter, b: ProtocolCounter) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }
}
