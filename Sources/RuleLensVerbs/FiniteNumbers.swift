import ArgumentParser

/// The one check every verb's parsed options pass through (on the command line and in a spec step): a Float or
/// Double option must hold a number that float32 can represent. swift-argument-parser reads `nan`, `inf` and `1e39`
/// into a Float or Double without complaint; every computation here is in float32, where they would turn the result
/// into NaN or infinity. Found by reflection over the parsed arguments, so a new option is covered without a list.
public enum FiniteNumbers {
    /// Throws a `ValidationError` naming the first option whose value is NaN, infinite or beyond float32's range.
    public static func check<A: ParsableArguments>(_ arguments: A) throws {
        if let (name, value) = firstNonFinite(in: arguments, name: nil, depth: 0) {
            let flag = "--" + optionName(name, options: VerbOption.declared(by: A.self))
            let why = value.isNaN ? "not a number" : value.isInfinite ? "infinite" : "beyond float32's range (±3.4e38)"
            throw ValidationError("\(flag) is \(value), which is \(why); pass a finite number (every computation is in float32); `--help` shows its default and range")
        }
    }

    /// (property name, value) of the first Float/Double that float32 cannot hold, searching option groups too.
    private static func firstNonFinite(in value: Any, name: String?, depth: Int) -> (String, Double)? {
        guard depth < 10 else { return nil }
        let number: Double? = (value as? Float).map(Double.init) ?? (value as? Double)
        if let number, let name {
            return number.isFinite && Swift.abs(number) <= Double(Float.greatestFiniteMagnitude) ? nil : (name, number)
        }
        for child in Mirror(reflecting: value).children {
            // A property wrapper's storage is `_name`; its parsed value sits inside it (`_parsedValue`, an enum payload).
            var childName = name
            if let label = child.label, label.hasPrefix("_"), label != "_parsedValue" { childName = String(label.dropFirst()) }
            if let found = firstNonFinite(in: child.value, name: childName, depth: depth + 1) { return found }
        }
        return nil
    }

    /// The declared long name of a property: swift-argument-parser's kebab-case of it, or a custom name that matches.
    static func optionName(_ property: String, options: [VerbOption]) -> String {
        var kebab = ""
        let chars = Array(property)
        for (i, c) in chars.enumerated() {
            let previousLower = i > 0 && chars[i - 1].isLowercase
            let nextLower = i + 1 < chars.count && chars[i + 1].isLowercase
            if c.isUppercase && i > 0 && (previousLower || (nextLower && chars[i - 1].isUppercase)) { kebab.append("-") }
            kebab.append(Character(c.lowercased()))
        }
        if options.contains(where: { $0.name == kebab }) { return kebab }
        return options.first { $0.name.replacingOccurrences(of: "-", with: "").lowercased() == property.lowercased() }?.name ?? kebab
    }
}
