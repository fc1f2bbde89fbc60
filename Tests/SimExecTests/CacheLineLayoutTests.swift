// SPDX-License-Identifier: GPL-2.0-only
import Testing
@testable import SimExec

/// A parallel run's world is built inside `AtomicWords.withCacheLineLayout`:
/// every allocation in lines of its own, per-page words a line each; a
/// deterministic world stays packed.
@Suite struct CacheLineLayoutTests {
    @Test func allocationsTakeWholeLinesOnlyInsideTheLayout() {
        let inside = AtomicWords.withCacheLineLayout { (0..<8).map { _ in AtomicWords(count: 1, initial: 7) } }
        defer { inside.forEach { $0.free() } }
        for w in inside {
            #expect(Int(bitPattern: w.base) % AtomicWords.cacheLine == 0)
            #expect(w.load(0) == 7)
        }
        // No two share a line.
        let lines = Set(inside.map { Int(bitPattern: $0.base) / AtomicWords.cacheLine })
        #expect(lines.count == inside.count)
        #expect(!AtomicWords.cacheLineLayout, "the flag is the build's only")
    }

    @Test func frameWordsSpreadInsideTheLayoutAndPackOutside() {
        let spread = AtomicWords.withCacheLineLayout { FrameWords(count: 16, initial: 3) }
        let packed = FrameWords(count: 16, initial: 3)
        let huge = AtomicWords.withCacheLineLayout { FrameWords(count: FrameWords.maxSpreadFrames + 1) }
        defer { spread.free(); packed.free(); huge.free() }
        #expect(spread.words.count == 16 * 8 && packed.words.count == 16 && huge.words.count == FrameWords.maxSpreadFrames + 1)
        for f in [spread, packed] {
            for i in 0..<16 { f.store(i, UInt64(100 + i)) }
            f.add(5, 1)
            #expect(f.cas(6, 106, 60))
            var want: [UInt64] = (0..<16).map { UInt64(100 + $0) }
            want[5] = 106
            want[6] = 60
            let got: [UInt64] = (0..<16).map { f.load($0) }
            #expect(got == want)
            #expect(f.exchange(0, 1) == 100 && f.peek(0) == 1)
        }
        // Frame i of the spread layout is in a line of its own.
        #expect(Set((0..<16).map { (Int(bitPattern: spread.words.base) + 8 * ($0 << 3)) / AtomicWords.cacheLine }).count == 16)
    }
}
