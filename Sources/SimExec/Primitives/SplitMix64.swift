// SPDX-License-Identifier: GPL-2.0-only

/// SplitMix64: the simulator's only source of randomness.
///
/// Every random choice in a deterministic run (which actor runs next, which page a
/// vcpu touches, which host event fires) draws from a `SplitMix64` seeded from the
/// run's seed, so the same seed gives the same run. `RandomNumberGenerator`
/// conformance lets the standard library's `Int.random(in:using:)` use it.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniformly distributed value in `0..<bound` (bound > 0), without the
    /// standard library's generic overhead.
    @inline(__always)
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int((UInt128(next()) &* UInt128(bound)) >> 64)
    }

    /// Derives an independent stream, e.g. one per schedule or per actor.
    public static func derive(_ seed: UInt64, _ salt: UInt64) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (salt &* 0xD6E8_FEB8_6659_FD93))
        return g.next()
    }
}

/// FNV-1a, 64-bit: the hash behind `traceHash`.
public struct FNV1a64: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    @inline(__always)
    public mutating func combine(_ word: UInt64) {
        var w = word
        for _ in 0..<8 {
            value ^= w & 0xFF
            value &*= 0x0000_0100_0000_01B3
            w >>= 8
        }
    }
}

/// The per-step hash of a schedule (`SimEngine.scheduleHash`): one rotate, xor and
/// multiply per 64-bit word (the FxHash step rustc uses), where `FNV1a64` takes
/// eight multiplies. Not for adversarial input: it tells two traces apart.
public struct StepHash: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    @inline(__always)
    public mutating func combine(_ word: UInt64) {
        value = ((value << 5) | (value >> 59)) ^ word
        value &*= 0x517C_C1B7_2722_0A95
    }
}
