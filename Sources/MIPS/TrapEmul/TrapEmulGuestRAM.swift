// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Guest RAM of the trap-and-emulate scenarios: gfn -> host pfn.
///
/// Fixed for now: the trap-and-emulate scenarios do not yet run the host mm
/// events of the SYNC_MMU model. Moving a page needs the whole GPA fault
/// protocol (`kvm_mips_map_page()` with the `mmu_notifier_seq` retry) under the
/// GVA fill path; a shortcut without it showed the seed-004 retry race instead of
/// anything about GVA tables (see the note in docs/mechanisms/gva-page-tables.md).
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
