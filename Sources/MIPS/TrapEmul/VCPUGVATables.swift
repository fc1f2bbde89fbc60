// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore
import RCU

/// The GVA page tables of one vcpu and their allocation caches.
public final class VCPUGVATables: @unchecked Sendable {
    public let kernel: PageTable
    public let user: PageTable
    let kernelCache: MMUMemoryCache
    let userCache: MMUMemoryCache
    public let variant: GVAFlushVariant

    public init(vcpu: Int, variant: GVAFlushVariant, engine: SimEngine, rcu: any RCUDomain) {
        kernel = GVAPageTables.makeTable(name: "vcpu\(vcpu) guest_kernel_mm.pgd", engine: engine, rcu: rcu)
        user = GVAPageTables.makeTable(name: "vcpu\(vcpu) guest_user_mm.pgd", engine: engine, rcu: rcu)
        kernelCache = MMUMemoryCache(table: kernel)
        userCache = MMUMemoryCache(table: user)
        self.variant = variant
    }
}
