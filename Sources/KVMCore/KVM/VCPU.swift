// SPDX-License-Identifier: GPL-2.0-only
import SimExec

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
