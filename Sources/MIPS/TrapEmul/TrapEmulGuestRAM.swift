// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Guest RAM of the trap-and-emulate scenarios: gfn -> host pfn.
///
/// Fixed: asid-lazy-regen maps guest frames to fixed host pages. (gva-flush
/// backs its guest RAM with a host mm instead and fills GVA PTEs through
/// `kvm_mips_map_page()`, the whole GPA fault protocol; a shortcut without it
/// showed the seed-004 retry race rather than anything about GVA tables: see
/// docs/mechanisms/gva-page-tables.md.)
public final class TrapEmulGuestRAM: @unchecked Sendable {
    private let pfns: AtomicWords
    public let gfns: Int

    public init(gfns: Int) {
        self.gfns = gfns
        pfns = AtomicWords(count: gfns)
        for g in 0..<gfns { pfns.store(g, UInt64(g + 1)) }
    }

    deinit { pfns.free() }

    /// The host pfn backing `gfn` now.
    public func pfn(_ gfn: Int) -> Int { Int(pfns.load(gfn)) }
}
