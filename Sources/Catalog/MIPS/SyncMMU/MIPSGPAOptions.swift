// SPDX-License-Identifier: GPL-2.0-only
import Harness

/// The knobs of a MIPS GPA world (seed 004): the GPA table's index bits per
/// level (small values make table frees frequent) and each host CPU's TLB size.
public struct MIPSGPAOptions: ScenarioOptions {
    public var tableBits: Int
    public var tlbSize: Int

    public init(tableBits: Int, tlbSize: Int) { self.tableBits = tableBits; self.tlbSize = tlbSize }

    public func validate() throws(InputError) {
        guard (1...4096).contains(tlbSize) else { throw InputError("TLB size must be between 1 and 4096 (got \(tlbSize))") }
        guard (1...12).contains(tableBits) else { throw InputError("table bits must be between 1 and 12") }
    }

    /// Rejects more guest pages than a 3-level GPA table of `tableBits` index
    /// bits per level can map (the scenarios keep tables tiny on purpose, so
    /// frees happen).
    public func checkPagesFit(_ pages: Int, scenario: String) throws(InputError) {
        try Self.checkPagesFit(pages, tableBits: tableBits, scenario: scenario)
    }

    /// The same check for a GPA table of `bits` index bits per level.
    public static func checkPagesFit(_ pages: Int, tableBits bits: Int, scenario: String) throws(InputError) {
        let span = 1 << (3 * bits)
        guard pages <= span else {
            throw InputError("--pages \(pages) is more than \(scenario)'s GPA table (3 levels of \(bits) bits) maps: at most \(span)")
        }
    }
}
