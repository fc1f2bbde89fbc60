// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import SimExec
import RCU
import KVMCore
import Harness
import Catalog
import MIPS
import CURCU
import BenchC
#if canImport(Glibc)
import Glibc
#endif


/// Figure 5: GPA-table memory.
extension Bench {
    // MARK: 5. memory

    static func rssBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }

    /// Bytes of GPA table per mapped page for a densely mapped 1 GiB guest, and
    /// the memory a sparse 64 GiB guest (one page mapped per 2 MiB) costs.
    static func memory(_ r: inout Report) {
        let engine = SimEngine(mode: .parallel, actorNames: [])
        defer { engine.shutdown() }
        let rcu = LibURCU(engine: engine)
        let dense = 1 << 18
        let t = denseTable(pages: dense, engine: engine, rcu: rcu)
        r.bytesPerMappedPage = Double(t.allocatedBytes) / Double(dense)
        r.bytesPerMappedPageLiveTables = Double(t.liveTables * t.entriesPerTable * 8) / Double(dense)
        let before = rssBytes()
        let limit = 64 << 18                                    // 64 GiB of 4 KiB pages
        let cap = PageTable.capacity(forPageLimit: limit, levels: 3, bitsPerLevel: 9)
        let sparse = PageTable(name: "sparse", levels: 3, bitsPerLevel: 9, capacity: cap, engine: engine, rcu: rcu)
        let cache = MMUMemoryCache(table: sparse)
        for g in stride(from: 0, to: limit, by: 512) {
            _ = cache.topup(min: 2, max: 4)
            if let s = sparse.walk(g, cache: cache) { sparse.set(slot: s, PTE(pfn: 1, flags: PTE.present)) }
        }
        cache.freeAll()
        r.peakMemorySparse64GiBBytes = max(0, rssBytes() - before)
        r.sparse64GiBTableBytes = sparse.allocatedBytes
    }
}
