// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// kvmppc_pin_guest_page() / kvmppc_unpin_guest_page() (book3s_64_mmu_hv.c):
/// get_user_pages_fast() of the page behind a guest physical address, which keeps
/// the page from being freed while pinned; the host may reuse it once unpinned.
public final class GuestPagePinning: @unchecked Sendable {
    let hostMM: HostMM
    let memslots: Memslots
    let oracle: VPAOracle

    init(hostMM: HostMM, memslots: Memslots, oracle: VPAOracle) {
        self.hostMM = hostMM
        self.memslots = memslots
        self.oracle = oracle
    }

    /// Returns the kernel address of `gpa` and the bytes to the end of its page,
    /// or nil (no memslot, or the page could not be faulted in). May sleep.
    func pin(_ gpa: Int) -> (va: KernelVA, nb: Int)? {
        guard let hva = memslots.gfnToHva(gpa / PAPR.pageSize),
              let (pfn, _) = hostMM.getUserPage(hva, write: true) else { return nil }
        let off = gpa % PAPR.pageSize
        oracle.pinned(pfn, hva: hva)
        return (pfn * PAPR.pageSize + off, PAPR.pageSize - off)
    }

    /// kvmppc_unpin_guest_page() (v3.4 and v3.8): `put_page(virt_to_page(va))`.
    /// An unpin of a page this code does not hold pinned is reported and not
    /// passed on (the kernel's put_page() would underflow the page's count);
    /// so is one of NULL (pfn 0 here, never a guest page), which the kernel
    /// turns into a put_page() of whatever `virt_to_page(NULL)` names.
    func unpin(_ va: KernelVA) {
        let pfn = va / PAPR.pageSize
        if oracle.unpinned(pfn) { hostMM.pages.put(pfn) }
    }
}
