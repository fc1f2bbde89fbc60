// SPDX-License-Identifier: GPL-2.0-only
import CRegistry

/// A scenario's registration record, placed in the `kvmsim_scenarios` linker
/// section by `@used @section("kvmsim_scenarios")`: a C function that writes
/// the scenario, type-erased, to the memory it is given.
public typealias ScenarioRecord = @convention(c) (UnsafeMutableRawPointer) -> Void

/// Every scenario linked into the binary, found through the registration
/// records each scenario file declares (FoundationDB's self-registering
/// workloads, done with a linker section): adding a scenario touches no list.
/// Listed in name order.
public enum ScenarioRegistry {
    /// Writes `scenario` as an `AnyScenario` into `out` (a record's body).
    public static func emit<S: Scenario>(_ scenario: S, into out: UnsafeMutableRawPointer) {
        out.initializeMemory(as: AnyScenario.self, repeating: AnyScenario(scenario), count: 1)
    }

    public static let all: [AnyScenario] = {
        guard let start = kvmsim_scenario_records_start(), let end = kvmsim_scenario_records_end() else { return [] }
        let count = (end - start) / MemoryLayout<ScenarioRecord>.stride
        let records = start.assumingMemoryBound(to: ScenarioRecord.self)
        let found = (0..<count).map { i -> AnyScenario in
            let slot = UnsafeMutablePointer<AnyScenario>.allocate(capacity: 1)
            defer { slot.deallocate() }
            records[i](UnsafeMutableRawPointer(slot))
            return slot.move()
        }
        var seen = Set<String>()
        for s in found { precondition(seen.insert(s.name).inserted, "two scenarios are named '\(s.name)'") }
        return found.sorted { $0.name < $1.name }
    }()

    public static func named(_ name: String) throws(InputError) -> AnyScenario {
        guard let s = all.first(where: { $0.name == name }) else {
            throw InputError("unknown scenario '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return s
    }
}
