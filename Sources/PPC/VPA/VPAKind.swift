// SPDX-License-Identifier: GPL-2.0-only

/// The three areas a PAPR guest registers per vcpu.
public enum VPAKind: Int, CaseIterable, Sendable, CustomStringConvertible {
    case vpa, dtl, slbShadow
    public var description: String { ["VPA", "DTL", "SLB shadow"][rawValue] }
}

/// H_REGISTER_VPA subfunctions (`(flags >> H_VPA_FUNC_SHIFT) & H_VPA_FUNC_MASK`).
public enum VPASubfunc: Int, CaseIterable, Sendable {
    case regVPA = 1, regDTL = 2, regSLB = 3, deregVPA = 5, deregDTL = 6, deregSLB = 7
    public var kind: VPAKind { [.vpa, .dtl, .slbShadow][(rawValue - 1) % 4] }
    public var isRegister: Bool { rawValue < 4 }
}
