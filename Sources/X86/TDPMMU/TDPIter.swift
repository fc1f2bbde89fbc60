// SPDX-License-Identifier: GPL-2.0-only
import SimExec
import KVMCore

/// `struct tdp_iter` (arch/x86/kvm/mmu/tdp_iter.[ch], v6.10-era text): a
/// pre-order walk over one root's paging structure towards
/// `nextLastLevelGFN`, visiting every SPTE that maps the range, stepping down
/// into present non-leaf SPTEs, then side, then up.
///
/// Runs inside `rcu_read_lock()` (the caller's): it may read a table that was
/// just unlinked, never one that was freed. Each table it reads is checked
/// against the generation it had when the walk stepped into it; a freed (or
/// freed and reused) table is reported as `rcu-use-after-free` and ends the walk.
///
/// `old_spte` is a snapshot: the SPTE may change under it (another vcpu's
/// cmpxchg, the CPU's A/D bits), which is why writers under the read lock use
/// cmpxchg against it and writers under the write lock an xchg for volatile SPTEs.
struct TDPIter {
    /// The TDP MMU, unretained (every walker retaining one shared object would
    /// be an atomic on one cache line per walk); the walk's caller keeps it alive.
    private let mmu: Unmanaged<TDPMMU>
    /// The arena's entries and table states (views of its storage) and the
    /// table geometry, copied once: a walk needs them at every step.
    let words: AtomicWords
    let states: AtomicWords
    let geometry: TDPGeometry
    /// The iterator will traverse the paging structure towards the mapping for this gfn.
    var nextLastLevelGFN: Int
    /// `nextLastLevelGFN` when the walk last yielded (forward progress).
    var yieldedGFN: Int
    /// pt_path[]: the tables (and their generations) traversed to reach `sptep`, by level - 1.
    private var pt = (0, 0, 0, 0)
    private var gen: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// The slot of the current SPTE.
    var sptep: Int = 0
    /// The lowest gfn mapped by the current SPTE.
    var gfn: Int = 0
    let rootLevel: Int
    /// The root the walk started from.
    let root: Int
    let minLevel: Int
    var level: Int
    let asID: Int
    /// A snapshot of the value at `sptep`.
    var oldSPTE = SPTE.nonPresent
    /// False once the walk went off the end of the structure (or met a freed table).
    var valid = false
    /// mmu_lock was dropped mid-walk: the next step restarts from the root.
    var yielded = false

    /// tdp_iter_start() of `root` (for_each_tdp_pte_min_level()).
    init(mmu: __shared TDPMMU, root: Int, minLevel: Int, start: Int) {      // __shared: no retain of the MMU per walk
        self.mmu = Unmanaged.passUnretained(mmu)
        words = mmu.arena.words
        states = mmu.arena.state
        geometry = mmu.geometry
        rootLevel = mmu.spLevel(root)
        self.root = root
        self.minLevel = minLevel
        level = rootLevel
        asID = mmu.spAsID(root)
        nextLastLevelGFN = start
        yieldedGFN = start
        setPath(rootLevel, table: root, generation: states.peek(root) &>> 2)
        restart()
    }

    private func path(_ level: Int) -> (table: Int, gen: UInt64) {
        switch level {
        case 1: return (pt.0, gen.0)
        case 2: return (pt.1, gen.1)
        case 3: return (pt.2, gen.2)
        default: return (pt.3, gen.3)
        }
    }

    private mutating func setPath(_ level: Int, table: Int, generation g: UInt64) {
        switch level {
        case 1: pt.0 = table; gen.0 = g
        case 2: pt.1 = table; gen.1 = g
        case 3: pt.2 = table; gen.2 = g
        default: pt.3 = table; gen.3 = g
        }
    }

    /// The table the current SPTE is in.
    var table: Int { path(level).table }

    /// READ_ONCE of the current slot, then the RCU check of its table.
    private mutating func readCurrent() {
        oldSPTE = SPTE(raw: words.load(sptep))                      // mmu.readSPTE()
        let p = path(level)
        let state = states.peek(p.table)                            // TableArena.isValid()
        if state & 3 == TableArena.free || state &>> 2 != p.gen {
            mmu._withUnsafeGuaranteedRef { $0.oracle.walkerReadFreedTable(p.table, level: level, gfn: gfn, who: "tdp_iter") }
            valid = false
        }
    }

    /// tdp_iter_refresh_sptep().
    private mutating func refreshSPTEP() {
        sptep = path(level).table &* geometry.entriesPerTable &+ geometry.spteIndex(gfn, level: level)     // arena.slot()
        readCurrent()
    }

    /// tdp_iter_restart(): back to the root, resuming at `nextLastLevelGFN`.
    mutating func restart() {
        yielded = false
        yieldedGFN = nextLastLevelGFN
        level = rootLevel
        gfn = geometry.roundForLevel(nextLastLevelGFN, level: level)
        valid = true
        refreshSPTEP()
    }

    /// try_step_down(): re-read the SPTE, step into its child table.
    private mutating func tryStepDown() -> Bool {
        if level == minLevel { return false }
        readCurrent()                       // avoid traversing into tables no longer linked here
        guard valid, oldSPTE.isShadowPresent, !oldSPTE.isLast(level: level) else { return false }
        let child = oldSPTE.pfn
        let g = states.peek(child) &>> 2                            // arena.generation()
        level -= 1
        setPath(level, table: child, generation: g)
        gfn = geometry.roundForLevel(nextLastLevelGFN, level: level)
        refreshSPTEP()
        return true
    }

    /// try_step_side().
    private mutating func tryStepSide() -> Bool {
        if geometry.spteIndex(gfn, level: level) == geometry.entriesPerTable - 1 { return false }
        gfn += geometry.pagesPerSPTE(level: level)
        nextLastLevelGFN = gfn
        sptep += 1
        readCurrent()
        return true
    }

    /// try_step_up().
    private mutating func tryStepUp() -> Bool {
        if level == rootLevel { return false }
        level += 1
        gfn = geometry.roundForLevel(gfn, level: level)
        refreshSPTEP()
        return true
    }

    /// tdp_iter_next().
    mutating func next() {
        if yielded { restart(); return }
        if tryStepDown() { return }
        if !valid { return }
        repeat {
            if tryStepSide() { return }
        } while tryStepUp() && valid
        valid = false
    }
}
