// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `struct kvmppc_vcore`: the vcpus that run together on one physical core.
///
/// `pcpu` (thread 0 of the core it runs on), `in_guest` and the entry generation
/// are written by the vcore's runner only; vcpus read them.
public final class Vcore: @unchecked Sendable {
    public let id: Int
    /// Filled while the VM is built (`createVCPU`), read-only once vcpus run: no
    /// dynamic exclusivity checks (the scheduler's wait predicates read it at every step).
    @exclusivity(unchecked) public internal(set) var vcpus: [PPCVCPU] = []
    /// pcpu + 1 (0: not placed yet), in_guest, entry generation.
    enum Field: Int, CaseIterable { case pcpu, inGuest, entryGeneration }
    let words = AtomicRecords<Field>(count: 1, kernel: true)
    /// Per vcpu of this vcore: the entry generation it finished (acks). Set with `vcpus`.
    @exclusivity(unchecked) var acks: AtomicWords!

    init(id: Int) { self.id = id }
    deinit { words.free(); acks?.free() }

    /// vc->pcpu: thread 0 of the core, or nil before the first run.
    public var pcpu: Int? { let p = words.load(0, .pcpu); return p == 0 ? nil : Int(p - 1) }
    public var inGuest: Bool { words.load(0, .inGuest) != 0 }
    public var entryGeneration: UInt64 { words.load(0, .entryGeneration) }
}
