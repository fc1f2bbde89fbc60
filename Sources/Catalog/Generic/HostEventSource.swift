// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Host mm events a host event source draws from: everything that fires MMU
/// notifiers in `HostMM` (zap, swap, KSM, host writes and COW, mprotect, aging).
public enum HostEvent: CaseIterable, Sendable {
    case zap, swapOut, swapIn, ksmMerge, hostWrite, mprotectReadOnly, mprotectReadWrite, clearFlushYoung, clearYoung, testYoung
    /// Soft-dirty clearing (clear_refs): drawn only by the worlds that list it.
    case clearSoftDirty
    /// mmap(MAP_FIXED) of a huge-page block with the other kind of memory
    /// (hugetlbfs <-> 4K pages): drawn only by the worlds that list it.
    case remap
    /// The events a host event source draws from by default (every one before
    /// `clearSoftDirty`, in this order: a world's draws, and so its traces, stay as they were).
    public static let every: [HostEvent] = [.zap, .swapOut, .swapIn, .ksmMerge, .hostWrite, .mprotectReadOnly, .mprotectReadWrite,
                                            .clearFlushYoung, .clearYoung, .testYoung]
}

extension HostMM {
    /// One random host mm event on a random page (or pair, or range) of the
    /// region: the workload of a host event source. A scheduling point first
    /// ("host:event"), where the host CPU may be overtaken.
    public func randomEvent(_ rng: inout SplitMix64, from events: [HostEvent] = HostEvent.every) {
        let h = base + rng.below(count)
        let ev = events[rng.below(events.count)]
        engine.point("host:event")
        switch ev {
        case .zap:
            let len = 1 + rng.below(min(4, count))
            let start = min(h, base + count - len)
            zap(start..<(start + len))
        case .swapOut: swapOut(h)
        case .swapIn: swapIn(h)
        case .ksmMerge: ksmMerge(h, base + rng.below(count))
        case .hostWrite: hostWrite(h)
        case .mprotectReadOnly: mprotect(h..<(h + 1), writable: false)
        case .mprotectReadWrite: mprotect(h..<(h + 1), writable: true)
        case .clearFlushYoung: clearYoung(range, flush: true)
        case .clearYoung: clearYoung(h..<(h + 1), flush: false)
        case .testYoung: _ = testYoung(h)
        case .clearSoftDirty: clearSoftDirty(h..<(h + 1))
        case .remap: remap(h)
        }
    }
}
