// SPDX-License-Identifier: GPL-2.0-only
import Harness

/// The knobs of a Book3S HV world (seed 002): hardware threads per physical
/// core sharing one TLB (`cpus` counts threads, so there are
/// `cpus / threadsPerCore` cores), the guest's vcpus per vcore, the percent of
/// its invalidating hcalls that carry H_LOCAL, and each core's TLB size.
public struct PPCHVOptions: ScenarioOptions {
    public var threadsPerCore: Int
    public var vcpusPerVcore: Int
    public var hLocalPercent: Int
    public var tlbSize: Int

    public init(threadsPerCore: Int, vcpusPerVcore: Int, hLocalPercent: Int, tlbSize: Int) {
        self.threadsPerCore = threadsPerCore; self.vcpusPerVcore = vcpusPerVcore
        self.hLocalPercent = hLocalPercent; self.tlbSize = tlbSize
    }

    public static let knobs: [OptionKnob<PPCHVOptions>] = [
        OptionKnob("threads-per-core", \.threadsPerCore, help: "PPC: hardware threads per core (sharing one TLB)."),
        OptionKnob("vcpus-per-vcore", \.vcpusPerVcore, help: "PPC: vcpus per vcore."),
        OptionKnob("h-local-percent", \.hLocalPercent, help: "PPC: percent of the guest's invalidations that use H_LOCAL."),
    ]

    public func validate() throws(InputError) {
        guard (1...4096).contains(tlbSize) else { throw InputError("TLB size must be between 1 and 4096 (got \(tlbSize))") }
        guard (1...8).contains(threadsPerCore) else { throw InputError("--threads-per-core must be between 1 and 8 (got \(threadsPerCore))") }
        guard (1...threadsPerCore).contains(vcpusPerVcore) else {
            throw InputError("--vcpus-per-vcore must be between 1 and --threads-per-core \(threadsPerCore) (got \(vcpusPerVcore))")
        }
        guard (0...100).contains(hLocalPercent) else { throw InputError("--h-local-percent must be between 0 and 100 (got \(hLocalPercent))") }
    }
}
