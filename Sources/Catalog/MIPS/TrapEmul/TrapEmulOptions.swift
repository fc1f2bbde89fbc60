// SPDX-License-Identifier: GPL-2.0-only
import Harness

/// The knobs of a MIPS trap-and-emulate world (seeds 000 and 001): each host
/// CPU's TLB size, the host ASID width (small, so ASID cycles wrap), and the
/// guest processes (guest ASIDs 1...n) each vcpu switches between.
public struct TrapEmulOptions: ScenarioOptions {
    public var tlbSize: Int
    public var asidBits: Int
    public var guestProcesses: Int
    /// 1 (default): a third of the guest's operations are guest kernel-mode reads
    /// (useg, kseg0, kseg2/3). 0: user-mode reads and process switches only, which
    /// keeps seed 000's user-ASID holes apart from the v4.10 kernel-ASID finding
    /// (docs/mechanisms/asid.md); tests use it, no command-line flag sets it.
    public var guestKernelAccesses: Int = 1

    public init(tlbSize: Int, asidBits: Int, guestProcesses: Int, guestKernelAccesses: Int = 1) {
        self.tlbSize = tlbSize; self.asidBits = asidBits; self.guestProcesses = guestProcesses
        self.guestKernelAccesses = guestKernelAccesses
    }

    enum CodingKeys: String, CodingKey { case tlbSize, asidBits, guestProcesses, guestKernelAccesses }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tlbSize = try c.decode(Int.self, forKey: .tlbSize)
        asidBits = try c.decode(Int.self, forKey: .asidBits)
        guestProcesses = try c.decode(Int.self, forKey: .guestProcesses)
        guestKernelAccesses = try c.decodeIfPresent(Int.self, forKey: .guestKernelAccesses) ?? 1
    }

    public func validate() throws(InputError) {
        guard (1...4096).contains(tlbSize) else { throw InputError("TLB size must be between 1 and 4096 (got \(tlbSize))") }
        guard (1...8).contains(asidBits) else { throw InputError("ASID bits must be between 1 and 8") }
        guard (1...64).contains(guestProcesses) else { throw InputError("guest processes must be between 1 and 64") }
        guard (0...1).contains(guestKernelAccesses) else { throw InputError("guest kernel accesses must be 0 or 1") }
    }
}
