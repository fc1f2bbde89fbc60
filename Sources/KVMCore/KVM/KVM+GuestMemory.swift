// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// Guest frames to host pages (virt/kvm/kvm_main.c, v4.11).
extension KVM {
    /// gfn_to_pfn_prot(): the pfn backing `gfn` (__gfn_to_memslot(), then
    /// hva_to_pfn(), which faults the page in with get_user_pages and may break
    /// COW for a write fault), with a page reference the caller drops with
    /// `releasePfnClean`, and whether the host mapping is writable. nil: no
    /// memslot (KVM_PFN_NOSLOT) or a fault the host refuses (KVM_PFN_ERR_FAULT).
    /// May sleep: a scheduling point.
    public func gfnToPfnProt(_ gfn: Int, writeFault: Bool) -> (pfn: Int, writable: Bool)? {
        guard let hva = memslots.gfnToHva(gfn) else { return nil }
        return hostMM.getUserPage(hva, write: writeFault)
    }

    /// gfn_to_pfn(): `gfnToPfnProt` of a write fault.
    public func gfnToPfn(_ gfn: Int) -> (pfn: Int, writable: Bool)? { gfnToPfnProt(gfn, writeFault: true) }

    /// kvm_release_pfn_clean(): drops the reference gfn_to_pfn*() took (put_page()).
    public func releasePfnClean(_ pfn: Int) { hostMM.pages.put(pfn) }
}
