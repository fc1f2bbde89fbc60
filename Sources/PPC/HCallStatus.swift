// SPDX-License-Identifier: GPL-2.0-only

/// hcall return codes (PAPR).
public enum HCallStatus: Int, Sendable {
    case success = 0          // H_SUCCESS
    case parameter = -4       // H_PARAMETER
    case notFound = -5        // H_NOT_FOUND
    case ptegFull = -6        // H_PTEG_FULL
    case resource = -16       // H_RESOURCE
}
