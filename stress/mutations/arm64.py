"""Mutations: arm64 stage-2 and VMIDs."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='s2-unmap-no-tlbi', cls=0, kind='skip a flush (stage-2 unmap)',
        file='Sources/ARM64/Stage2/KVMPgtable+Walkers.swift',
        edits=[
            ('        pgt.tlbi.tlbFlushVMIDIPA(ctx.addr, level: isTable ? 0 : ctx.level)\n',
             ''),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-no-retry-check', cls=0, kind='skip a retry check',
        file='Sources/ARM64/Stage2/Stage2MMU+Fault.swift',
        edits=[
            ('        if kvm.invalidate.retry(mmuSeq) {',
             '        if false && kvm.invalidate.retry(mmuSeq) {'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-seq-after-mmap-unlock', cls=1, kind='move a check across a scheduling point (R1)',
        file='Sources/ARM64/Stage2/Stage2Variant.swift',
        edits=[
            ('    public var mmuSeqSnapshot = MMUSeqSnapshot.beforeMmapUnlock',
             '    public var mmuSeqSnapshot = MMUSeqSnapshot.afterMmapUnlock'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-no-reload-after-table-pre', cls=0, kind='use a stale snapshot (R2)',
        file='Sources/ARM64/Stage2/Stage2Variant.swift',
        edits=[
            ('    public var reloadAfterTablePre = true',
             '    public var reloadAfterTablePre = false'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-apply-range-last-page', cls=2, kind='range end off by one page',
        file='Sources/ARM64/Stage2/Stage2MMU+Notifier.swift',
        edits=[
            ('            fn(addr..<next)',
             '            fn(addr..<(next == range.upperBound ? max(addr, next - 1) : next))'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-vmid-fast-path-no-gen-check', cls=2, kind='skip a check (VMID generation)',
        file='Sources/ARM64/VMID/VMIDAllocator.swift',
        edits=[
            ('            if generationMatches(vmid) {',
             '            if true {'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-make-without-break', cls=5, kind="skip a flush (break-before-make's TLBI)",
        file='Sources/ARM64/Stage2/KVMPgtable+Map.swift',
        edits=[
            ('        guard trySetPTE(ctx, .locked) else { return false }\n        engine.point("stage2_try_break_pte:locked")\n        if !ctx.flags.contains(.skipBBMTLBI) {',
             '        guard trySetPTE(ctx, .locked) else { return false }\n        engine.point("stage2_try_break_pte:locked")\n        if false {'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-seq-after-gfn-to-pfn', cls=1,
        kind='move a check across a scheduling point (mmu_invalidate_seq read again after get_user_pages)',
        file='Sources/ARM64/Stage2/Stage2MMU+Fault.swift',
        edits=[
            ('        let writable = got.writable && !(loggingActive && !write)\n',
             '        let writable = got.writable && !(loggingActive && !write)\n        mmuSeq = kvm.invalidate.seq\n'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-vmid-rollover-no-flush', cls=2,
        kind='skip a flush (flush_context() without __kvm_flush_vm_context: only a VMID rollover runs it)',
        file='Sources/ARM64/VMID/VMIDAllocator.swift',
        edits=[
            ('        // Broadcast TLB flush + I-cache invalidation over the inner shareable domain.\n        flushVMContext()\n', ''),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
    Mutation(
        name='s2-vmid-fast-path-plain-store', cls=3,
        kind='drop an atomic (the VMID fast path stores active_vmids instead of cmpxchg: loses to a rollover)',
        file='Sources/ARM64/VMID/VMIDAllocator.swift',
        edits=[
            ('                if cmpxchg(activeVMIDs, cpu, oldActiveVMID, vmid) != 0 {',
             '                activeVMIDs.store(cpu, vmid); if true {'),
        ],
        scenarios=['stage2-race', 'stage2-stress']),
]
