// SPDX-License-Identifier: GPL-2.0-only

/// An array of records in atomic 64-bit words: one record per element (a vcpu,
/// a guest page, an HPTE slot), each holding the fields of `Field`. The named
/// form of `words[fields * i + k]`: `records.load(vcpu, .hostCopy)`.
///
/// Same memory rules as `AtomicWords` (acquire loads, release stores, C11
/// read-modify-writes); the owner calls `free()` once, in its deinit.
public struct AtomicRecords<Field: CaseIterable & RawRepresentable>: @unchecked Sendable where Field.RawValue == Int {
    public let words: AtomicWords
    /// Fields per record (`Field.allCases.count`, computed once).
    public let stride: Int
    /// Records.
    public let count: Int

    public init(count: Int, initial: UInt64 = 0, kernel: Bool = false) {
        stride = Field.allCases.count
        self.count = count
        words = AtomicWords(count: count * stride, initial: initial, kernel: kernel)
    }

    public func free() { words.free() }

    @inlinable @inline(__always) public func index(_ i: Int, _ f: Field) -> Int { i &* stride &+ f.rawValue }

    @inlinable @inline(__always) public func load(_ i: Int, _ f: Field) -> UInt64 { words.load(index(i, f)) }
    /// A load that is never a scheduling point (oracles).
    @inlinable @inline(__always) public func peek(_ i: Int, _ f: Field) -> UInt64 { words.peek(index(i, f)) }
    @inlinable @inline(__always) public func store(_ i: Int, _ f: Field, _ v: UInt64) { words.store(index(i, f), v) }
    @inlinable @inline(__always) @discardableResult public func add(_ i: Int, _ f: Field, _ v: UInt64) -> UInt64 { words.add(index(i, f), v) }
    @inlinable @inline(__always) @discardableResult public func sub(_ i: Int, _ f: Field, _ v: UInt64) -> UInt64 { words.sub(index(i, f), v) }
    @inlinable @inline(__always) @discardableResult public func fetchOr(_ i: Int, _ f: Field, _ v: UInt64) -> UInt64 { words.fetchOr(index(i, f), v) }
    /// xchg(): stores `v`, returns the old value.
    @inlinable @inline(__always) @discardableResult public func exchange(_ i: Int, _ f: Field, _ v: UInt64) -> UInt64 { words.exchange(index(i, f), v) }
    @inlinable @inline(__always) public func cas(_ i: Int, _ f: Field, _ expected: UInt64, _ desired: UInt64) -> Bool {
        words.cas(index(i, f), expected, desired)
    }
}
