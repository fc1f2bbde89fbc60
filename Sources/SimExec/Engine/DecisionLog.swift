// SPDX-License-Identifier: GPL-2.0-only

/// The executor chosen at each step of a deterministic schedule, appended once
/// a step by `SimEngine.pickNext`: a buffer the engine owns (freed in its
/// deinit), so that an append is a store and an increment. (A Swift array
/// stored in the engine checks its buffer's uniqueness at every append: 10%
/// of `pickNext`'s instructions.)
/// Engine mutex, as the rest of the scheduler's state.
struct DecisionLog {
    private(set) var base: UnsafeMutablePointer<UInt16>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 1024) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    @inline(__always)
    mutating func append(_ d: UInt16) {
        if count == capacity { grow() }
        base[count] = d
        count += 1
    }

    private mutating func grow() {
        let bigger = UnsafeMutablePointer<UInt16>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity *= 2
    }

    mutating func removeAll() { count = 0 }

    /// A copy, as traces and strategies keep it.
    var array: [UInt16] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Frees the buffer; the log must not be used again.
    func free() { base.deallocate() }
}
