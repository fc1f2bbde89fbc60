// SPDX-License-Identifier: GPL-2.0-only
import Harness

/// The knobs of a MIPS trap-and-emulate world (seeds 000 and 001): each host
/// CPU's TLB size, the host ASID width (small, so ASID cycles wrap), and the
/// guest processes (guest ASIDs 1...n) each vcpu switches between.
public struct TrapEmulOptions: ScenarioOptions {
    public var tlbSize: Int
    public var asidBits: Int
    public var guestProcesses: Int

    public init(tlbSize: Int, asidBits: Int, guestProcesses: Int) {
        self.tlbSize = tlbSize; self.asidBits = asidBits; self.guestProcesses = guestProcesses
    }

    public func validate() throws(InputError) {
        guard (1...4096).contains(tlbSize) else { throw InputError("TLB size must be between 1 and 4096 (got \(tlbSize))") }
        guard (1...8).contains(asidBits) else { throw InputError("ASID bits must be between 1 and 8") }
        guard (1...64).contains(guestProcesses) else { throw InputError("guest processes must be between 1 and 64") }
    }
}
