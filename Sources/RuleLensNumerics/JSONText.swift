import Foundation

/// The one way RuleLens writes JSON (stdout `--json`, `--out` JSON Lines, result files): keys sorted, slashes
/// unescaped, and every non-finite number (NaN, ±inf — a diverged model's loss, an undefined metric) written as
/// `null`, since JSON has no NaN. Dictionaries/arrays of plain values and `Encodable` values take the same path.
public enum JSONText {
    /// `value` with every non-finite Float/Double (also inside arrays and dictionaries) replaced by `NSNull()`.
    public static func sanitized(_ value: Any) -> Any {
        switch value {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let f as Float: return f.isFinite ? Double(f) : NSNull()
        case let dict as [String: Any]: return dict.mapValues(sanitized)
        case let array as [Any]: return array.map(sanitized)
        case let n as NSNumber:
            let d = n.doubleValue
            return d.isFinite ? n : NSNull()
        default:
            if let optional = value as? OptionalProtocol, optional.isNil { return NSNull() }
            return value
        }
    }

    /// The JSON bytes of a JSON-compatible `object` (sorted keys, non-finite numbers → null).
    public static func data(_ object: Any, pretty: Bool = false) throws -> Data {
        var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]
        if pretty { options.insert(.prettyPrinted) }
        return try JSONSerialization.data(withJSONObject: sanitized(object), options: options)
    }

    /// `data(object)` as a string.
    public static func string(_ object: Any, pretty: Bool = false) throws -> String {
        String(decoding: try data(object, pretty: pretty), as: UTF8.self)
    }

    private static let nanMark = "\u{1}rulelens-nan", posInfMark = "\u{1}rulelens+inf", negInfMark = "\u{1}rulelens-inf"

    /// An `Encodable` value as a JSON object (non-finite floating-point fields become `NSNull()`), ready for `data`.
    public static func object<T: Encodable>(_ value: T) throws -> Any {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: posInfMark, negativeInfinity: negInfMark, nan: nanMark)
        let raw = try JSONSerialization.jsonObject(with: try encoder.encode(value), options: [.fragmentsAllowed])
        func restore(_ v: Any) -> Any {
            switch v {
            case let s as String: return [nanMark, posInfMark, negInfMark].contains(s) ? NSNull() : s
            case let dict as [String: Any]: return dict.mapValues(restore)
            case let array as [Any]: return array.map(restore)
            default: return v
            }
        }
        return restore(raw)
    }

    /// The JSON bytes of an `Encodable` value, through the same path as `data(_:)`.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> Data {
        try data(try object(value), pretty: pretty)
    }
}

/// Lets `sanitized` see through `Optional` values stored as `Any`.
private protocol OptionalProtocol { var isNil: Bool { get } }
extension Optional: OptionalProtocol { var isNil: Bool { self == nil } }
