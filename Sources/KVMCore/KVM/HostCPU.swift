// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A host CPU: the execution context of host work scheduled on that CPU (kswapd,
/// ksmd, the VMM's own threads: the sources of host mm events, or a runner of
/// vcores). An architecture's per-CPU hardware (a TLB) belongs to the CPU index.
public actor HostCPU: SimActor {
    public nonisolated let executor: SimExecutor
    public nonisolated let index: Int

    public init(index: Int, executor: SimExecutor) {
        self.index = index
        self.executor = executor
    }

    /// Runs host work on this CPU until it returns.
    public func run(_ work: @Sendable () -> Void) { work() }
}
