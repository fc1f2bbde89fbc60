// SPDX-License-Identifier: GPL-2.0-only
import Synchronization

/// A named protocol branch (a retry taken, a fast path, `tlbie` vs. `tlbiel`,
/// `need_tlb_flush` consumed, ...), counted each time a run reaches it.
///
/// Declare one as a static constant next to the model code that reaches it and
/// call `engine.cover(mark)` there; a scenario lists the marks it should reach
/// (`Scenario.coverageMarks`), and a run reports every count, zeros included.
public struct CoverageMark: Sendable, Hashable {
    public let index: Int
    public let name: String

    /// Registers (once per name) a mark.
    public init(_ name: String) {
        let i = CoverageMark.registry.withLock { names -> Int in
            if let i = names.firstIndex(of: name) { return i }
            precondition(names.count < CoverageMark.capacity, "more than \(CoverageMark.capacity) coverage marks")
            names.append(name)
            CoverageMark.registered.store(names.count, ordering: .releasing)
            return names.count - 1
        }
        index = i
        self.name = name
    }

    public static let capacity = 256
    static let registry = Locked<[String]>([])
    /// How many marks are declared (a mark's index is below it): read without
    /// the registry's lock by `SimEngine.takeCoverage(into:)`, once a schedule.
    static let registered = Atomic<Int>(0)
    /// Every mark declared so far, by index.
    public static var all: [String] { registry.withLock { $0 } }

    /// Counts by mark index (`SimEngine.takeCoverage(into:)`) as counts by
    /// name, marks reached only.
    public static func named(_ counts: [Int]) -> [String: Int] {
        let names = all
        var out: [String: Int] = [:]
        for (i, c) in counts.enumerated() where c > 0 && i < names.count { out[names[i]] = c }
        return out
    }
}
