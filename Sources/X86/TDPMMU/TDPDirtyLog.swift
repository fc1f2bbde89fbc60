// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Dirty logging state of the VM's memslots (KVM_MEM_LOG_DIRTY_PAGES and
/// `slot->dirty_bitmap`, virt/kvm/kvm_main.c, v6.10-era), as the TDP MMU with
/// Accessed/Dirty bits and PML uses it: a writable SPTE made by a fault marks
/// its page at once (make_spte(), which sets D eagerly); afterwards the CPU
/// logs the page in the vcpu's PML buffer when it sets the SPTE's Dirty bit,
/// and KVM moves the buffer into the bitmap at VM exit (vmx_flush_pml_buffer());
/// a harvest (KVM_GET_DIRTY_LOG) takes the bitmap word by word (xchg) and
/// clears the Dirty bits of what it took, so the next write logs again.
///
/// Locking: bitmap words are set (set_bit_le) and taken (xchg) atomically; a
/// slot's logging flag changes in a memslot update (kvm->slots_lock held).
/// Only address space 0's slots log (the model's SMM slots map the same RAM).
public final class TDPDirtyLog: @unchecked Sendable {
    /// Per memslot id: KVM_MEM_LOG_DIRTY_PAGES.
    let logging: AtomicWords
    /// The dirty bitmap of gfns (64 to a word: BITS_PER_LONG).
    let bitmap: AtomicWords
    let gfns: Int

    init(slots: Int, gfns: Int) {
        self.gfns = gfns
        logging = AtomicWords(count: max(slots, 1), kernel: true)
        bitmap = AtomicWords(count: max((gfns + 63) / 64, 1), kernel: true)
    }

    deinit { logging.free(); bitmap.free() }

    /// kvm_slot_dirty_track_enabled().
    @inline(__always) public func isLogging(_ slot: Memslot) -> Bool { slot.asID == 0 && slot.id < logging.count && logging.load(slot.id) != 0 }

    /// Sets KVM_MEM_LOG_DIRTY_PAGES of a slot (the memslot update's new flags).
    func setLogging(_ slotID: Int, _ on: Bool) { logging.store(slotID, on ? 1 : 0) }

    /// mark_page_dirty_in_slot(): the gfn's bit set (the caller checked the slot logs).
    @inline(__always) func markPageDirtyInSlot(_ gfn: Int) { bitmap.fetchOr(gfn / 64, 1 << UInt64(gfn % 64)) }

    /// Whether the gfn's bit is set now (the oracle's view).
    func isMarked(_ gfn: Int) -> Bool { bitmap.peek(gfn / 64) & (1 << UInt64(gfn % 64)) != 0 }
}
