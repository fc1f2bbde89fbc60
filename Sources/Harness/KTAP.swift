// SPDX-License-Identifier: GPL-2.0-only

/// What every KTAP version 1 writer here shares (Documentation/dev-tools/ktap.rst).
enum KTAP {
    /// A result line's description may hold anything but `#` and a newline.
    static func name(_ s: String) -> String {
        String(s.map { $0 == "#" || $0.isNewline ? "_" : $0 })
    }

    /// Items in runs of one scenario, in order: one top-level test each.
    static func groupedByScenario<T>(_ items: [T], _ scenario: (T) -> String) -> [(name: String, items: [T])] {
        var groups: [(name: String, items: [T])] = []
        for item in items {
            if groups.last?.name == scenario(item) { groups[groups.count - 1].items.append(item) }
            else { groups.append((scenario(item), [item])) }
        }
        return groups
    }
}
