// SPDX-License-Identifier: GPL-2.0-only

/// Sizes and offsets (asm/lppaca.h, the PAPR spec), and the model's page size.
public enum PAPR {
    public static let pageSize = 4096
    /// L1_CACHE_BYTES on ppc64: areas must be cache-line aligned.
    public static let cacheLine = 128
    /// sizeof(struct lppaca): the smallest VPA.
    public static let lppacaSize = 640
    /// sizeof(struct dtl_entry).
    public static let dtlEntrySize = 48
    /// sizeof(struct reg_vpa): the length word at offset 4.
    public static let regVPASize = 8
    /// v3.4's smallest SLB shadow (`if (len < 16) goto out_unpin;`); from seed
    /// 003 on, `sizeof(struct reg_vpa)`.
    public static let v34SLBShadowMinimum = 16
    /// lppaca.yield_count (4 bytes) and lppaca.dtl_idx (8 bytes), model offsets.
    public static let yieldCountOffset = 0x68
    public static let dtlIdxOffset = 0x108
}

/// A guest virtual address in host terms: pfn * pageSize + offset ("address in
/// the kernel linear mapping" of a pinned page).
public typealias KernelVA = Int
