// SPDX-License-Identifier: GPL-2.0-only
import Harness
import KVMCore

// The core's actors run workload loops (`SimEngine.spawnLoop`).
extension HostCPU: WorkloadActor {}
extension VCPU: WorkloadActor {}
