// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// The host: physical cores of `threadsPerCore` hardware threads (host CPU
/// `core * threadsPerCore + t`), one TLB per core, and which vcore occupies
/// each core.
public final class PPCHost: @unchecked Sendable {
    public let cores: Int
    public let threadsPerCore: Int
    public let tlbs: [CoreTLB]
    /// Per core: vcore id + 1 while a vcore runs there, else 0.
    let coreOwner: AtomicWords

    public init(cores: Int, threadsPerCore: Int, tlbSize: Int) {
        self.cores = cores
        self.threadsPerCore = threadsPerCore
        tlbs = (0..<cores).map { CoreTLB(core: $0, size: tlbSize) }
        coreOwner = AtomicWords(count: cores, kernel: true)
    }
    deinit { coreOwner.free() }

    public var cpus: Int { cores * threadsPerCore }
}
