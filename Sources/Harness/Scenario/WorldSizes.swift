// SPDX-License-Identifier: GPL-2.0-only

/// The sizes every scenario's world has, whatever its architecture: host CPUs,
/// vcpus, guest pages, and how much work each actor does in one deterministic
/// schedule. The CLI sets `cpus`, `vcpus` and `pages`; the rest are the
/// scenario's. Architecture-specific knobs live in its `ScenarioOptions`.
public struct WorldSizes: Codable, Sendable, Equatable {
    public var cpus: Int
    public var vcpus: Int
    public var pages: Int
    /// Guest operations per vcpu in one deterministic schedule.
    public var opsPerVCPU: Int
    /// Host events per host event source in one deterministic schedule.
    public var hostEventsPerSource: Int
    /// Host CPUs that run a host event source (from cpu0 up).
    public var hostEventSources: Int

    public init(cpus: Int, vcpus: Int, pages: Int, opsPerVCPU: Int, hostEventsPerSource: Int, hostEventSources: Int) {
        self.cpus = cpus; self.vcpus = vcpus; self.pages = pages; self.opsPerVCPU = opsPerVCPU
        self.hostEventsPerSource = hostEventsPerSource; self.hostEventSources = hostEventSources
    }

    /// Limits that keep a run meaningful; violations are bad input (exit 2).
    public func validate() throws(InputError) {
        guard (1...64).contains(cpus) else { throw InputError("--cpus must be between 1 and 64 (got \(cpus))") }
        guard (1...256).contains(vcpus) else { throw InputError("--vcpus must be between 1 and 256 (got \(vcpus))") }
        guard (1...(1 << 20)).contains(pages) else { throw InputError("--pages must be between 1 and 1048576 (got \(pages))") }
        guard (0...cpus).contains(hostEventSources) else { throw InputError("host event sources (\(hostEventSources)) must be between 0 and --cpus \(cpus)") }
        guard (1...(1 << 16)).contains(opsPerVCPU), (0...(1 << 16)).contains(hostEventsPerSource) else {
            throw InputError("operations per actor out of range")
        }
    }
}
