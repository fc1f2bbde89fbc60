// SPDX-License-Identifier: GPL-2.0-only
import SimExec

/// A host CPU: the execution context of host work scheduled on that CPU (kswapd,
/// ksmd, the VMM's own threads: the sources of host mm events). It owns the CPU's
/// TLB (`KVM.tlbs[index]`), which the vcpu loaded on it fills and flushes.
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

/// A vcpu thread (the task that calls KVM_RUN), loaded on a host CPU.
public actor VCPU: SimActor {
    public nonisolated let executor: SimExecutor
    public nonisolated let state: VCPUState

    public init(state: VCPUState, executor: SimExecutor) {
        self.state = state
        self.executor = executor
    }

    /// Runs the vcpu's loop (kvm_arch_vcpu_ioctl_run) until it returns.
    public func run(_ loop: @Sendable () -> Void) { loop() }
}
