// SPDX-License-Identifier: GPL-2.0-only

/// One configuration of a scenario's world: the common sizes and the
/// architecture's options. Reads like one struct (`config.cpus`,
/// `config.tableBits`) through dynamic member lookup.
///
/// Codable as one flat JSON object (sizes and options side by side), the
/// `config` of trace files and reports.
@dynamicMemberLookup
public struct ScenarioConfig<Options: ScenarioOptions>: Sendable, Equatable, Codable {
    public var sizes: WorldSizes
    public var options: Options

    public init(_ sizes: WorldSizes, _ options: Options) {
        self.sizes = sizes
        self.options = options
    }

    public subscript<T>(dynamicMember field: WritableKeyPath<WorldSizes, T>) -> T {
        get { sizes[keyPath: field] }
        set { sizes[keyPath: field] = newValue }
    }

    public subscript<T>(dynamicMember field: WritableKeyPath<Options, T>) -> T {
        get { options[keyPath: field] }
        set { options[keyPath: field] = newValue }
    }

    public init(from decoder: Decoder) throws {
        sizes = try WorldSizes(from: decoder)
        options = try Options(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        try sizes.encode(to: encoder)
        try options.encode(to: encoder)
    }

    /// Checks the sizes and the options.
    public func validate() throws(InputError) {
        try sizes.validate()
        try options.validate()
    }
}

extension ScenarioConfig where Options == NoOptions {
    public init(_ sizes: WorldSizes) { self.init(sizes, NoOptions()) }
}
