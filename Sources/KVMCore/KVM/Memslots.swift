// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// `struct kvm_memory_slot`: guest frames `baseGfn ..< baseGfn + npages` backed by
/// the VMM's memory at host virtual page `userspaceAddr` onwards.
///
/// Addresses in the model are page numbers: a gfn is gpa >> PAGE_SHIFT, an hva
/// page is hva >> PAGE_SHIFT.
public struct Memslot: Sendable, Equatable {
    public var id: Int
    public var baseGfn: Int
    public var npages: Int
    public var userspaceAddr: Int
    /// KVM_MEM_LOG_DIRTY_PAGES.
    public var logDirtyPages = false
    /// KVM_MEM_READONLY.
    public var readOnly = false
    /// The address space (x86: 0, or 1 for SMM; kvm_memslots_for_spte_role()).
    public var asID = 0

    public init(id: Int, baseGfn: Int, npages: Int, userspaceAddr: Int, logDirtyPages: Bool = false, readOnly: Bool = false,
                asID: Int = 0) {
        self.id = id; self.baseGfn = baseGfn; self.npages = npages; self.userspaceAddr = userspaceAddr
        self.logDirtyPages = logDirtyPages; self.readOnly = readOnly; self.asID = asID
    }

    public var gfns: Range<Int> { baseGfn..<(baseGfn + npages) }
    public var hvas: Range<Int> { userspaceAddr..<(userspaceAddr + npages) }

    /// __gfn_to_hva_memslot().
    public func gfnToHva(_ gfn: Int) -> Int { userspaceAddr + (gfn - baseGfn) }
    /// hva_to_gfn_memslot().
    public func hvaToGfn(_ hva: Int) -> Int { baseGfn + (hva - userspaceAddr) }
}

/// `struct kvm_memslots`, in ascending gfn order (ordered iteration keeps runs deterministic).
public struct Memslots: Sendable {
    public private(set) var slots: [Memslot]

    /// Address space 0's slots first, then each in ascending gfn order.
    public init(_ slots: [Memslot]) { self.slots = slots.sorted { ($0.asID, $0.baseGfn) < ($1.asID, $1.baseGfn) } }

    /// gfn_to_memslot() (address space 0).
    public func slot(forGfn gfn: Int) -> Memslot? { slots.first { $0.gfns.contains(gfn) } }

    /// __gfn_to_memslot(__kvm_memslots(kvm, as_id), gfn).
    public func slot(forGfn gfn: Int, asID: Int) -> Memslot? { slots.first { $0.asID == asID && $0.gfns.contains(gfn) } }

    /// kvm_arch_nr_memslot_as_ids(): the address spaces with slots.
    public var addressSpaces: Int { (slots.map(\.asID).max() ?? 0) + 1 }

    /// gfn_to_hva() (nil: no slot, "KVM_HVA_ERR_BAD").
    public func gfnToHva(_ gfn: Int) -> Int? { slot(forGfn: gfn)?.gfnToHva(gfn) }

    /// The gfn an hva backs, if any slot maps it.
    public func hvaToGfn(_ hva: Int) -> Int? {
        for s in slots where s.hvas.contains(hva) { return s.hvaToGfn(hva) }
        return nil
    }

    public var totalPages: Int { slots.reduce(0) { $0 + $1.npages } }
    public var maxGfn: Int { slots.map { $0.baseGfn + $0.npages }.max() ?? 0 }
}

extension Memslots {
    /// kvm_for_each_memslot_in_hva_range() in each address space in turn
    /// (__kvm_handle_hva_range()'s loops): the slots whose host range
    /// intersects `hvas`, by address space, then in ascending hva order (the
    /// interval tree's).
    public func slots(intersectingHVAs hvas: Range<Int>) -> [Memslot] {
        slots.filter { $0.hvas.overlaps(hvas) }.sorted { ($0.asID, $0.userspaceAddr) < ($1.asID, $1.userspaceAddr) }
    }
}
