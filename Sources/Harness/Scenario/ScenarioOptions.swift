// SPDX-License-Identifier: GPL-2.0-only

/// An architecture's configuration knobs beyond `WorldSizes` (a MIPS world's
/// GPA table index bits and TLB size, a PPC host's threads per core), one
/// struct per architecture or mechanism, declared beside its scenarios.
///
/// Encoded into the same JSON object as the sizes (a trace's `config`), so a
/// field name must not repeat a `WorldSizes` name.
public protocol ScenarioOptions: Codable, Sendable, Equatable {
    /// The knobs the command line may set (`--threads-per-core 2`).
    static var knobs: [OptionKnob<Self>] { get }
    /// Limits of the options themselves (bad input: exit 2).
    func validate() throws(InputError)
}

extension ScenarioOptions {
    public static var knobs: [OptionKnob<Self>] { [] }
    public func validate() throws(InputError) {}

    /// Equality with options of any type (false for another type).
    func isEqual(_ other: any ScenarioOptions) -> Bool {
        guard let o = other as? Self else { return false }
        return self == o
    }
}

/// A knob of `ScenarioOptions` the command line sets by flag name.
public struct OptionKnob<Options>: Sendable {
    /// The flag without dashes ("threads-per-core").
    public let flag: String
    public let help: String
    public let field: WritableKeyPath<Options, Int> & Sendable

    public init(_ flag: String, _ field: WritableKeyPath<Options, Int> & Sendable, help: String) {
        self.flag = flag; self.field = field; self.help = help
    }
}

/// The options of a scenario with no knobs beyond the sizes.
public struct NoOptions: ScenarioOptions {
    public init() {}
}
