// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// Counters for the commit's claims (flushes per entry, local vs. global).
public enum PPCCounter: Int, CaseIterable, Sendable {
    case vcoreEntries, threadEntries, entryFlushes, tlbie, tlbiel, localInvalidations, globalInvalidations, hpteFaults
    public var counter: ProtocolCounter {
        switch self {
        case .vcoreEntries: ProtocolCounter("vcore-entries", "vcore guest entries (kvmppc_run_core)")
        case .threadEntries: ProtocolCounter("thread-entries", "per-thread guest entries (kvmppc_hv_entry)")
        case .entryFlushes: ProtocolCounter("entry-tlb-flushes", "whole-partition TLB flushes at guest entry")
        case .tlbie: ProtocolCounter("tlbie", "global invalidations (tlbie) of one page")
        case .tlbiel: ProtocolCounter("tlbiel", "core-local invalidations (tlbiel) of one page")
        case .localInvalidations: ProtocolCounter("local-invalidations", "hcall invalidations chosen local")
        case .globalInvalidations: ProtocolCounter("global-invalidations", "hcall invalidations chosen global")
        case .hpteFaults: ProtocolCounter("hpte-faults", "hypervisor faults on absent or read-only HPTEs")
        }
    }
}
