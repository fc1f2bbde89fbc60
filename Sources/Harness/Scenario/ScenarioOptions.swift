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

/// A knob of `ScenarioOptions` the command line sets by flag name: an integer,
/// or one of an enum's names (`--gpa-table-free immediate`), parsed here so a
/// bad value is one line of bad input.
public struct OptionKnob<Options>: Sendable {
    /// The flag without dashes ("threads-per-core").
    public let flag: String
    public let help: String
    /// The names an enum knob takes ("rcu", "immediate"); nil for an integer.
    public let values: [String]?
    let apply: @Sendable (inout Options, String) throws(InputError) -> Void

    public init(_ flag: String, _ field: WritableKeyPath<Options, Int> & Sendable, help: String) {
        self.flag = flag; self.help = help; values = nil
        apply = { options, text throws(InputError) in
            guard let v = Int(text) else { throw InputError("--\(flag) must be an integer (got '\(text)')") }
            options[keyPath: field] = v
        }
    }

    public init<E: RawRepresentable & CaseIterable & Sendable>(_ flag: String, _ field: WritableKeyPath<Options, E> & Sendable,
                                                                help: String) where E.RawValue == String {
        let names = E.allCases.map(\.rawValue)
        self.flag = flag; self.help = help; values = names
        apply = { options, text throws(InputError) in
            guard let v = E(rawValue: text) else {
                throw InputError("--\(flag) must be one of \(names.joined(separator: ", ")) (got '\(text)')")
            }
            options[keyPath: field] = v
        }
    }
}

/// The options of a scenario with no knobs beyond the sizes.
public struct NoOptions: ScenarioOptions {
    public init() {}
}
