/// GPT-2's byte ↔ character table: byte-level BPE vocabularies spell every byte as one printable character
/// (the printable Latin-1 bytes as themselves, the other 68 bytes as U+0100…U+0143), so a token string such as
/// `"Ġworld"` means the bytes `" world"`.
public enum ByteLevel {
    /// The character of each byte 0…255.
    public static let charOfByte: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable
        var next = 256
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            chars.append(next)
            next += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { table[b] = Unicode.Scalar(UInt32(c))! }
        return table
    }()

    /// The byte of each table character (scalar value → byte), nil for characters outside the table.
    public static let byteOfChar: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, c) in charOfByte.enumerated() { map[c.value] = UInt8(b) }
        return map
    }()

    /// The table spelling of `bytes`.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(charOfByte[Int(b)]) }
        return String(s)
    }

    /// The bytes a table-spelled token stands for, or nil if it holds a character outside the table
    /// (then Hugging Face's decoder uses the token's own UTF-8 bytes).
    public static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for u in token.unicodeScalars {
            guard let b = byteOfChar[u.value] else { return nil }
            out.append(b)
        }
        return out
    }
}
