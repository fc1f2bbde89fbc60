// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The invariants of seed 002, checked on every guest access through a core TLB.
/// The oracle knows nothing about variants: it sees HPTE slots, their
/// generations, which vcpus used a translation, which invalidations completed,
/// and the host's pages.
///
/// - `stale-tlb`: once an hcall that removed (H_REMOVE, H_BULK_REMOVE) or
///   write-protected (H_PROTECT) a translation has returned, no vcpu uses a TLB
///   entry filled from it (for a write-protect: no write through it). Exempt: a
///   local invalidation (H_LOCAL) of a translation that other vcpus had used:
///   PAPR lets the guest ask for H_LOCAL only when no other processor used the
///   translation, so what follows is the guest's own doing.
/// - `use-after-free`: the guest never reads or writes through a TLB entry whose
///   pfn the host freed or no longer maps for that guest page (the MMU-notifier
///   contract); no exemption, guest behaviour cannot excuse it.
/// - `wp-write`: the guest never writes a page through a TLB entry while the
///   host PTE is read-only (KSM, COW, mprotect).
///
/// Locking: per-slot records are atomics.
public final class PPCTLBOracle: @unchecked Sendable {
    /// The oracles this checker owns.
    public static let oracles: [Oracle] = [.staleTLB, .useAfterFree, .wpWrite]
    let engine: SimEngine
    let hostMM: HostMM
    let memslots: Memslots
    let npte: Int
    /// Per slot: generation, users (vcpu bitmask), retired translation, retired
    /// generation for writes.
    ///
    /// A generation is `translation << 20 | version`: an H_ENTER starts a new
    /// translation, and H_PROTECT or an HPTE fault makes a new version of the same
    /// one. Retirements are watermarks (every translation of a slot ends with an
    /// invalidation, so all up to the mark are retired) except those in `exempt`:
    /// local invalidations that broke the H_LOCAL contract.
    private enum Field: Int, CaseIterable { case generation, users, retiredTranslation, retiredWriteGeneration }
    private let words: AtomicRecords<Field>
    /// Per (slot, kind): generations whose local invalidation broke the contract.
    private let exempt = Locked<[Int: Set<UInt64>]>([:])

    init(engine: SimEngine, hostMM: HostMM, memslots: Memslots, npte: Int) {
        self.engine = engine
        self.hostMM = hostMM
        self.memslots = memslots
        self.npte = npte
        words = AtomicRecords(count: npte)
    }
    deinit { words.free() }

    /// A world reset in place (Catalog's `ResettableWorld`): no exempt
    /// invalidation recorded. The per-slot records are words the world's
    /// `WorldMemory` restores.
    func resetForReuse() { exempt.withLock { $0 = [:] } }

    static let versionBits: UInt64 = 20
    public func generation(_ slot: Int) -> UInt64 { words.load(slot, .generation) }

    /// A new translation (`fresh`: H_ENTER) or a new version of the current one is
    /// about to be written to `slot` (HPTE lock held). A fresh translation also
    /// forgets who used the slot before.
    func newTranslation(_ slot: Int, fresh: Bool) {
        withoutAccessPoints {
            let g = words.load(slot, .generation)
            if fresh {
                words.store(slot, .users, 0)
                words.store(slot, .generation, ((g >> Self.versionBits) + 1) << Self.versionBits)
            } else {
                words.store(slot, .generation, g + 1)
            }
        }
    }

    enum Retirement { case remove, writeProtect }

    /// An hcall that invalidated generation `gen` of `slot` is returning.
    func guestInvalidated(_ slot: Int, gen: UInt64, _ kind: Retirement, local: Bool, vcpu: Int) {
        withoutAccessPoints {
            let others = words.load(slot, .users) & ~(1 << UInt64(vcpu))
            let key = 2 * slot + (kind == .remove ? 0 : 1)
            let mark = kind == .remove ? gen >> Self.versionBits : gen
            if local && others != 0 {
                engine.event("oracle: H_LOCAL by vcpu\(vcpu) on HPTE \(slot) used by other vcpus (mask \(hex(Int(others)))): the guest's own risk")
                exempt.withLock { _ = $0[key, default: []].insert(mark) }
                return
            }
            let field: Field = kind == .remove ? .retiredTranslation : .retiredWriteGeneration
            while true {
                let old = words.load(slot, field)
                if old >= mark || words.cas(slot, field, old, mark) { return }
            }
        }
    }

    private func isExempt(_ slot: Int, _ kind: Retirement, _ mark: UInt64) -> Bool {
        let key = 2 * slot + (kind == .remove ? 0 : 1)
        return exempt.withLock { $0[key]?.contains(mark) ?? false }
    }

    /// A guest access through `e` (a TLB hit, or the entry just filled).
    func access(vcpu: Int, core: Int, _ e: PPCTLBEntry, write: Bool, via: String) {
        withoutAccessPoints {
            words.fetchOr(e.slot, .users, 1 << UInt64(vcpu))
            // Built only for a report (every guest access comes through here).
            func what() -> String { "vcpu\(vcpu) on core \(core) \(write ? "writes" : "reads") vpn \(hex(e.vpn)) via \(via) (HPTE \(e.slot) generation \(e.generation), pfn \(e.pfn))" }
            let translation = e.generation >> Self.versionBits
            let writeMark = words.load(e.slot, .retiredWriteGeneration)
            if translation <= words.load(e.slot, .retiredTranslation) && !isExempt(e.slot, .remove, translation) {
                engine.report(.staleTLB, "\(what()), but the guest removed that translation and its hcall returned")
            } else if write && e.generation <= writeMark && writeMark >> Self.versionBits == translation
                        && !isExempt(e.slot, .writeProtect, e.generation) {
                engine.report(.staleTLB, "\(what()), but the guest write-protected that translation and its hcall returned")
            }
            guard let hva = memslots.gfnToHva(e.gfn) else { return }
            if !hostMM.pages.isInUse(e.pfn) {
                engine.report(.useAfterFree, "\(what()): pfn \(e.pfn) is free")
            } else if hostMM.currentPfn(hva) != e.pfn {
                engine.report(.useAfterFree, "\(what()): the host no longer maps pfn \(e.pfn) at gfn \(e.gfn) (hva \(hex(hva)))")
            } else if write && !hostMM.pte(hva).isWrite {
                engine.report(.wpWrite, "\(what()): the host PTE of gfn \(e.gfn) is read-only")
            }
        }
    }
}

extension Oracle {
    /// Seed 002's invariants (`wp-write` is the generic one, `Oracle.wpWrite`).
    public static let staleTLB = Oracle("stale-tlb", "once an hcall that removed or write-protected a translation returned, no vcpu uses a TLB entry filled from it (unless the guest broke the H_LOCAL rule)")
    public static let useAfterFree = Oracle("use-after-free", "the guest never uses a TLB entry whose pfn the host freed or no longer maps for that guest page")
}
