import Foundation

/// A JSON value: what steps report and expectations read. Numbers are Doubles; objects keep sorted keys on output.
public enum RunValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([RunValue])
    case object([String: RunValue])

    /// From JSONSerialization-style values (`[String: Any]`, `[Any]`, NSNumber, String, NSNull); optionals become null.
    public init(any value: Any?) {
        switch value {
        case nil, is NSNull: self = .null
        case let v as RunValue: self = v
        case let v? where RunValue.isBoolean(v): self = .bool((v as? Bool) ?? ((v as? NSNumber)?.boolValue ?? false))
        case let n as NSNumber: self = .number(n.doubleValue)
        case let i as Int: self = .number(Double(i))
        case let d as Double: self = .number(d)
        case let f as Float: self = .number(Double(f))
        case let s as String: self = .string(s)
        case let a as [Any?]: self = .array(a.map { RunValue(any: $0) })
        case let a as [Any]: self = .array(a.map { RunValue(any: $0) })
        case let o as [String: Any?]: self = .object(o.mapValues { RunValue(any: $0) })
        case let o as [String: Any]: self = .object(o.mapValues { RunValue(any: $0) })
        default: self = .string(String(describing: value!))
        }
    }

    /// Whether a Foundation value is a boolean (NSNumber wraps booleans too; its objCType "c" tells them apart).
    public static func isBoolean(_ v: Any) -> Bool {
        if type(of: v) == Bool.self { return true }
        if let n = v as? NSNumber, type(of: v) != Int.self, type(of: v) != Double.self { return String(cString: n.objCType) == "c" }
        return false
    }

    /// A Double, or nil when the value is not a finite-or-NaN number (booleans count as 0/1).
    public var number: Double? {
        switch self {
        case .number(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }

    public subscript(key: String) -> RunValue? {
        if case .object(let o) = self { return o[key] }
        if case .array(let a) = self, let i = Int(key), a.indices.contains(i) { return a[i] }
        return nil
    }

    /// Keys of an object (sorted), indices of an array.
    public var childKeys: [String] {
        switch self {
        case .object(let o): return o.keys.sorted()
        case .array(let a): return a.indices.map(String.init)
        default: return []
        }
    }

    /// Follows a dotted path; nil where a key is missing.
    public func lookup(_ path: [String]) -> RunValue? {
        var v: RunValue? = self
        for key in path { v = v?[key]; if v == nil { return nil } }
        return v
    }

    /// Foundation objects for JSONSerialization (non-finite numbers become null, since JSON has no NaN).
    public var foundation: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let d): return d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? NSNumber(value: Int64(d)) : NSNumber(value: d)) : NSNull()
        case .string(let s): return s
        case .array(let a): return a.map(\.foundation)
        case .object(let o): return o.mapValues(\.foundation)
        }
    }

    /// JSON text with sorted keys.
    public func jsonText(pretty: Bool = true) -> String {
        var opts: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { opts.insert(.prettyPrinted) }
        let obj = foundation
        if let data = try? JSONSerialization.data(withJSONObject: obj, options: opts.union(.fragmentsAllowed)) {
            return String(decoding: data, as: UTF8.self)
        }
        return "null"
    }

    /// Parses JSON text. Through `JSONDecoder`, whose numbers round-trip exactly: Foundation's `JSONSerialization`
    /// parser on Linux rounds about a third of 17-digit doubles by an ulp, so results read back from a run's stamps
    /// would differ from the ones computed.
    public static func parse(json data: Data) throws -> RunValue {
        try JSONDecoder().decode(RunValue.self, from: data)
    }

    /// Short human text: numbers with up to 4 decimals.
    public var display: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return RunValue.format(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.prefix(8).map(\.display).joined(separator: ", ") + (a.count > 8 ? ", …" : "") + "]"
        case .object(let o): return "{" + o.keys.sorted().prefix(6).joined(separator: ", ") + (o.count > 6 ? ", …" : "") + "}"
        }
    }

    public static func format(_ d: Double) -> String {
        if !d.isFinite { return d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf") }
        if d == d.rounded() && abs(d) < 1e12 { return String(Int64(d)) }
        if abs(d) >= 1e5 || abs(d) < 1e-3 { return String(format: "%.3e", d) }
        return String(format: "%.4f", d)
    }
}

extension RunValue: Decodable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([RunValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: RunValue].self)) }
    }
}
