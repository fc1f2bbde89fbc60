// SPDX-License-Identifier: GPL-2.0-only
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kernel and model memory of a world (every `AtomicWords` made while it
/// is built), snapshotted when the build ends so that a world reset in place
/// between deterministic schedules (`ResettableWorld`) gets back every word
/// exactly as a fresh build would have it, without knowing who owns which.
///
/// Use: `let m = WorldMemory.beginRecording()` first thing in a world's
/// initializer, `m.endRecording()` last; `m.restore()` in its reset. Words the
/// build makes are recorded on the building thread only (a thread-local
/// word), so worlds built on other threads at the same time are not mixed up.
/// Words freed while the build is still recording (a temporary, or an object
/// the build made and did not keep) are dropped from the record. After the
/// build, the world must free no recorded words before it dies: keep every
/// object the build made that owns words (the model frees its words in its
/// objects' deinits, which die with the world); an object dropped after
/// `endRecording` would have `restore` write into freed memory.
/// State that is not in `AtomicWords` (Swift arrays, counters, free lists)
/// is the world's to reset.
///
/// An allocator whose words beyond what it has handed out are never read
/// before it fills them (a page-table arena: `alloc` fills each table) limits
/// its record to the words in use when the build ends (`limitRecord`), so a
/// reset copies back kilobytes, not the whole arena.
///
/// A build inside `withoutRecording` (a world the runner will not reset:
/// replays, shrinking, runs without resets) records nothing and takes no
/// snapshot, which would cost it a copy of every word it made; such a world
/// cannot reset (`isRecorded` is false).
public final class WorldMemory: @unchecked Sendable {
    private var regions: [(base: UnsafeMutableRawPointer, bytes: Int)] = []
    /// Per region that limits its record: how many of its leading words the
    /// snapshot holds, asked when the build ends.
    private var limits: [(base: UnsafeMutableRawPointer, words: () -> Int)] = []
    private var snapshot: UnsafeMutableRawPointer?
    /// Bytes recorded (and copied back by each `restore`).
    public private(set) var bytes = 0
    /// Whether the build was recorded (false inside `withoutRecording`):
    /// only then may `restore` be called.
    public let isRecorded: Bool

    private init(recording: Bool) { isRecorded = recording }

    deinit { snapshot?.deallocate() }

    /// The recorder of the calling thread's build, if one is recording.
    static let key: pthread_key_t = {
        var k = pthread_key_t()
        precondition(pthread_key_create(&k, nil) == 0)
        return k
    }()

    /// Set on a thread while its builds are not to be recorded (`withoutRecording`).
    static let offKey: pthread_key_t = {
        var k = pthread_key_t()
        precondition(pthread_key_create(&k, nil) == 0)
        return k
    }()

    /// Runs `body` (which builds a world) with recording off on the calling
    /// thread: its `beginRecording` returns a memory that records nothing
    /// (`isRecorded` false).
    public static func withoutRecording<R>(_ body: () throws -> R) rethrows -> R {
        let before = pthread_getspecific(offKey)
        pthread_setspecific(offKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(offKey, before) }
        return try body()
    }

    /// Starts recording the words the calling thread makes (nothing inside
    /// `withoutRecording`).
    public static func beginRecording() -> WorldMemory {
        guard pthread_getspecific(offKey) == nil else { return WorldMemory(recording: false) }
        let m = WorldMemory(recording: true)
        precondition(pthread_getspecific(key) == nil, "WorldMemory: a world build is already recording on this thread")
        pthread_setspecific(key, Unmanaged.passUnretained(m).toOpaque())
        return m
    }

    /// Stops recording and takes the snapshot `restore` copies back.
    public func endRecording() {
        guard isRecorded else { return }
        precondition(pthread_getspecific(Self.key) == Unmanaged.passUnretained(self).toOpaque())
        pthread_setspecific(Self.key, nil)
        for l in limits {
            guard let i = regions.lastIndex(where: { $0.base == l.base }) else { continue }
            regions[i].bytes = min(regions[i].bytes, max(0, l.words()) * 8)
        }
        limits = []
        bytes = regions.reduce(0) { $0 + $1.bytes }
        let s = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 8)
        var at = s
        for r in regions {
            at.copyMemory(from: r.base, byteCount: r.bytes)
            at += r.bytes
        }
        snapshot = s
    }

    /// Copies every recorded word back to its value when the build ended.
    public func restore() {
        guard var at = snapshot.map(UnsafeRawPointer.init) else { preconditionFailure("WorldMemory.restore before endRecording") }
        for r in regions {
            r.base.copyMemory(from: at, byteCount: r.bytes)
            at += r.bytes
        }
    }

    /// Records only the first `words()` words of `w` (asked when the build
    /// ends; the whole of `w` if it asks for more) when a build on this thread
    /// is recording `w`. For an allocator that fills every word it hands out
    /// before anyone reads it: its words beyond `words()` when the build ends
    /// may hold anything after a reset (what the last schedule left) and must
    /// be unreachable until filled, as they are in a fresh build.
    public static func limitRecord(of w: AtomicWords, to words: @escaping () -> Int) {
        guard let p = pthread_getspecific(key) else { return }
        Unmanaged<WorldMemory>.fromOpaque(p).takeUnretainedValue().limits.append((UnsafeMutableRawPointer(w.base), words))
    }

    /// Called by `AtomicWords.free`: a build's temporary leaves the record.
    @inline(__always)
    static func noteFree(_ base: UnsafeMutablePointer<UInt64>) {
        guard let p = pthread_getspecific(key) else { return }
        let m = Unmanaged<WorldMemory>.fromOpaque(p).takeUnretainedValue()
        let raw = UnsafeMutableRawPointer(base)
        if let i = m.regions.lastIndex(where: { $0.base == raw }) { m.regions.remove(at: i) }
        m.limits.removeAll { $0.base == raw }
    }

    /// Called by every `AtomicWords` initializer.
    @inline(__always)
    static func noteAllocation(_ base: UnsafeMutablePointer<UInt64>, count: Int) {
        guard let p = pthread_getspecific(key) else { return }
        Unmanaged<WorldMemory>.fromOpaque(p).takeUnretainedValue().regions.append((UnsafeMutableRawPointer(base), max(count, 1) * 8))
    }
}
