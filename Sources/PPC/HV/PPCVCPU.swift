// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `vcpu->arch` of a Book3S HV vcpu: its vcore, its thread in the vcore, and the
/// pre-fix `last_cpu`.
public final class PPCVCPU: @unchecked Sendable {
    public let id: Int
    /// unowned(unsafe): the vcore holds its vcpus, and `Book3SHV.vcores` the vcore.
    public unowned(unsafe) let vcore: Vcore
    /// vcpu->arch.ptid: the hardware thread within the core.
    public let ptid: Int
    /// vcpu->arch.last_cpu (pre-fix); written by this vcpu's thread only.
    /// kvmppc_core_vcpu_create() (v3.7) starts it at -1 (a u16: 0xffff), so
    /// a vcpu's first entry always flushes.
    var lastCPU: Int = -1

    init(id: Int, vcore: Vcore, ptid: Int) { self.id = id; self.vcore = vcore; self.ptid = ptid }

    /// A world reset in place (Catalog's `ResettableWorld`): `last_cpu` as
    /// kvmppc_core_vcpu_create() set it.
    func resetForReuse() { lastCPU = -1 }
}
