// SPDX-License-Identifier: GPL-2.0-only
import Testing
@testable import SimExec

/// `WorldMemory`: a reset copies back every word a world's build made, and
/// only those still alive (a word freed during the build leaves the record,
/// or every `restore()` would write into freed memory).
@Suite struct WorldMemoryTests {
    @Test func restoreBringsBackTheBuildsWords() {
        let m = WorldMemory.beginRecording()
        let kept = AtomicWords(count: 3, initial: 7)
        m.endRecording()
        defer { kept.free() }
        kept.store(0, 1); kept.store(2, 9)
        m.restore()
        #expect((0..<3).map { kept.load($0) } == [7, 7, 7])
    }

    @Test func aWordFreedDuringTheBuildLeavesTheRecord() {
        let m = WorldMemory.beginRecording()
        let kept = AtomicWords(count: 2, initial: 5)
        let temporary = AtomicWords(count: 4)
        temporary.free()
        m.endRecording()
        defer { kept.free() }
        #expect(m.bytes == 2 * 8)
        kept.store(1, 0)
        m.restore()
        #expect(kept.load(1) == 5)
    }

    @Test func aBuildWithoutRecordingRecordsNothing() {
        let m = WorldMemory.withoutRecording { () -> WorldMemory in
            let m = WorldMemory.beginRecording()
            let kept = AtomicWords(count: 4)
            kept.free()
            m.endRecording()
            return m
        }
        #expect(!m.isRecorded && m.bytes == 0)
        // Recording is on again after it, and the next build records.
        let n = WorldMemory.beginRecording()
        let kept = AtomicWords(count: 2)
        n.endRecording()
        defer { kept.free() }
        #expect(n.isRecorded && n.bytes == 2 * 8)
    }

    @Test func wordsMadeAfterTheBuildAreNotRecorded() {
        let m = WorldMemory.beginRecording()
        let kept = AtomicWords(count: 1)
        m.endRecording()
        let later = AtomicWords(count: 8)
        defer { kept.free(); later.free() }
        #expect(m.bytes == 8)
    }

    @Test func aLimitedRecordRestoresOnlyItsLeadingWords() {
        let m = WorldMemory.beginRecording()
        let arena = AtomicWords(count: 8, initial: 3)
        var handedOut = 1
        WorldMemory.limitRecord(of: arena) { handedOut * 2 }
        handedOut = 2                                   // asked when the build ends, not before
        let other = AtomicWords(count: 2, initial: 4)
        m.endRecording()
        defer { arena.free(); other.free() }
        #expect(m.bytes == 4 * 8 + 2 * 8)
        for i in 0..<8 { arena.store(i, 0) }
        other.store(1, 0)
        m.restore()
        #expect((0..<8).map { arena.load($0) } == [3, 3, 3, 3, 0, 0, 0, 0])
        #expect(other.load(1) == 4)
    }

    @Test func aLimitAboveTheRegionKeepsAllOfItAndAFreedRegionTakesItsLimitAlong() {
        let m = WorldMemory.beginRecording()
        let small = AtomicWords(count: 2, initial: 6)
        WorldMemory.limitRecord(of: small) { 100 }
        let temporary = AtomicWords(count: 4)
        WorldMemory.limitRecord(of: temporary) { 1 }
        temporary.free()
        m.endRecording()
        defer { small.free() }
        #expect(m.bytes == 2 * 8)
        small.store(1, 0)
        m.restore()
        #expect(small.load(1) == 6)
    }

    @Test func aLimitOutsideARecordingIsIgnored() {
        let w = AtomicWords(count: 2)
        defer { w.free() }
        WorldMemory.limitRecord(of: w) { 0 }           // no build recording on this thread: nothing to limit
        let m = WorldMemory.beginRecording()
        let kept = AtomicWords(count: 1)
        m.endRecording()
        defer { kept.free() }
        #expect(m.bytes == 8)
    }
}
