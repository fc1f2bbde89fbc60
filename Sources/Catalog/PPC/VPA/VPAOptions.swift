// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import Harness

/// The knobs of a VPA world beyond its sizes: a guest that reads other vcpus'
/// dispatch trace logs, and the memory model deterministic mode explores.
/// Both off by default (every case and trace before them: no reader, `sc`);
/// a default is left out of the encoded configuration.
public struct VPAOptions: ScenarioOptions {
    /// 1: each vcpu's guest reads the next vcpu's DTL as it runs
    /// (dtl_file_read(), `VPARegistration.guestReadDTL`), and the host's DTL
    /// entries and `vpa->dtl_idx` are guest memory it sees (`VPAVCPU.guestLog`).
    public var dtlReader: Int = 0
    /// `pso`: the vcpus' stores to the guest's view of their logs go through
    /// store buffers (each vcpu gets two drainer actors), so a missing
    /// smp_wmb() between an entry and its index can be seen.
    public var memoryModel: MemoryModel = .sc

    public init() {}

    public static let knobs: [OptionKnob<VPAOptions>] = [
        OptionKnob("dtl-reader", \.dtlReader,
                   help: "PPC VPA: 1 for a guest reading each running vcpu's DTL (pseries dtl_file_read()), checked against the entries the host published."),
        OptionKnob("memory-model", \.memoryModel,
                   help: "PPC VPA: sc (the default), or pso: the host's stores to the guest's DTL view wait in per-CPU store buffers the scheduler drains (a missing smp_wmb() shows; deterministic mode)."),
    ]

    public func validate() throws(InputError) {
        guard (0...1).contains(dtlReader) else { throw InputError("--dtl-reader must be 0 or 1 (got \(dtlReader))") }
        if memoryModel == .pso && dtlReader == 0 {
            throw InputError("--memory-model pso needs --dtl-reader 1 (the DTL words are the VPA world's only weakly ordered memory)")
        }
    }

    enum CodingKeys: String, CodingKey { case dtlReader, memoryModel }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dtlReader = try c.decodeIfPresent(Int.self, forKey: .dtlReader) ?? 0
        memoryModel = try c.decodeIfPresent(MemoryModel.self, forKey: .memoryModel) ?? .sc
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if dtlReader != 0 { try c.encode(dtlReader, forKey: .dtlReader) }
        if memoryModel != .sc { try c.encode(memoryModel, forKey: .memoryModel) }
    }
}
