// SPDX-License-Identifier: GPL-2.0-only

/// What every JUnit XML writer here shares.
enum JUnitXML {
    /// Text safe in an XML 1.0 attribute or element: the five entities
    /// escaped, characters XML 1.0 forbids (controls but tab, newline, CR) dropped.
    static func escape(_ s: String) -> String {
        var o = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&apos;"
            default:
                if ch.value == 0x9 || ch.value == 0xA || ch.value == 0xD || ch.value >= 0x20 { o.unicodeScalars.append(ch) }
            }
        }
        return o
    }
}
