import RuleLensNumerics

/// The integer plane an operand task's examples cover, in the task's own coordinates.
///
/// For chickens and rabbits the plane is (legs/2, heads): `a` = legs/2, `b` = heads, and only points with
/// heads ≤ legs/2 ≤ 2·heads exist.
public struct OperandPlane: Codable, Equatable, Sendable {
    public var aName: String
    public var bName: String
    public var aMin: Int, aMax: Int, bMin: Int, bMax: Int

    public init(aName: String = "a", bName: String = "b", aMin: Int, aMax: Int, bMin: Int, bMax: Int) {
        self.aName = aName; self.bName = bName
        self.aMin = aMin; self.aMax = aMax; self.bMin = bMin; self.bMax = bMax
    }

    /// Whether (a, b) is an example of `task` (the grid, or the triangle for chickens and rabbits).
    public func contains(a: Int, b: Int, task: TaskName) -> Bool {
        guard a >= aMin, a <= aMax, b >= bMin, b <= bMax else { return false }
        if task == .chickensRabbits { return b <= a && a <= 2 * b }
        return true
    }
}

/// A held-out square: every (a, b) with |a − centerA| ≤ half and |b − centerB| ≤ half.
public struct Square: Codable, Equatable, Sendable {
    public var centerA: Int
    public var centerB: Int
    public var half: Int

    public init(centerA: Int, centerB: Int, half: Int) {
        self.centerA = centerA; self.centerB = centerB; self.half = half
    }

    /// Chebyshev distance from the centre (0 at the centre, `half` on the outermost ring).
    public func ring(a: Int, b: Int) -> Int { max(abs(a - centerA), abs(b - centerB)) }
    public func contains(a: Int, b: Int) -> Bool { ring(a: a, b: b) <= half }
    /// The central part: the inner half of the square, Chebyshev distance ≤ half/2.
    public func isCentral(a: Int, b: Int) -> Bool { ring(a: a, b: b) <= half / 2 }
    /// The rim: inside the square but outside its central part.
    public func isRim(a: Int, b: Int) -> Bool { contains(a: a, b: b) && !isCentral(a: a, b: b) }
    /// Whether two squares share at least one grid point.
    public func overlaps(_ o: Square) -> Bool {
        abs(centerA - o.centerA) <= half + o.half && abs(centerB - o.centerB) <= half + o.half
    }
}

/// Study 1's operand-plane tasks: prompt and answer for each (a, b).
public enum OperandTasks {
    public static let modulus = 113

    /// The plane of `task` (nil for tasks without one).
    public static func plane(of task: TaskName) -> OperandPlane? {
        switch task {
        case .addition, .base9Addition, .linearRegression: return OperandPlane(aMin: 0, aMax: 99, bMin: 0, bMax: 99)
        case .modularAddition: return OperandPlane(aMin: 0, aMax: modulus - 1, bMin: 0, bMax: modulus - 1)
        case .chickensRabbits: return OperandPlane(aName: "legs/2", bName: "heads", aMin: 0, aMax: 198, bMin: 0, bMax: 99)
        default: return nil
        }
    }

    /// Default leave-square-out centre, as published: (56, 56) for modular addition, (70, 50) for chickens
    /// and rabbits in (legs/2, heads), (50, 50) otherwise.
    public static func defaultCenter(of task: TaskName) -> (Int, Int) {
        switch task {
        case .modularAddition: return (56, 56)
        case .chickensRabbits: return (70, 50)
        default: return (50, 50)
        }
    }

    /// Every point of the plane, a-major then b.
    public static func points(of task: TaskName) -> [(a: Int, b: Int)] {
        guard let p = plane(of: task) else { return [] }
        var out: [(a: Int, b: Int)] = []
        if task == .chickensRabbits {
            // Heads-major, as the task is usually enumerated: 5,050 points.
            for heads in p.bMin...p.bMax { for half in heads...(2 * heads) { out.append((half, heads)) } }
            return out.sorted { ($0.a, $0.b) < ($1.a, $1.b) }
        }
        for a in p.aMin...p.aMax { for b in p.bMin...p.bMax { out.append((a, b)) } }
        return out
    }

    /// The rule each task follows, as a formula (the `rule` field of its examples).
    public static func ruleText(of task: TaskName) -> String {
        switch task {
        case .addition, .multiDigitAddition: return "c=a+b"
        case .modularAddition: return "c=(a+b)%\(modulus)"
        case .base9Addition: return "c=a+b in base 9"
        case .linearRegression: return "c=a+2b+3"
        case .chickensRabbits: return "rabbits=legs/2-heads, chickens=2*heads-legs/2"
        default: return ""
        }
    }

    /// One example of `task` at (a, b) in `format`.
    public static func example(task: TaskName, a: Int, b: Int, format: TaskFormat) -> Example {
        switch task {
        case .addition, .multiDigitAddition:
            return DigitTrace.example(a: a, b: b, base: 10, modulus: nil, format: format, rule: ruleText(of: task))
        case .modularAddition:
            return DigitTrace.example(a: a, b: b, base: 10, modulus: modulus, format: format, rule: ruleText(of: task))
        case .base9Addition:
            return DigitTrace.example(a: a, b: b, base: 9, modulus: nil, format: format, rule: ruleText(of: task))
        case .linearRegression:
            let c = String(a + 2 * b + 3)
            var e = Example(prompt: "(\(a),\(b))=", target: c, answer: c, rule: ruleText(of: task), a: a, b: b)
            let aDigits = String(a).count, bDigits = String(b).count
            e.sources = SourceKeys.allOperandDigits(target: c, operandPositions: Array(1...aDigits) + Array((aDigits + 2)..<(aDigits + 2 + bDigits)))
            return e
        case .chickensRabbits:
            let heads = b, legs = 2 * a
            let rabbits = a - heads, chickens = 2 * heads - a
            if format == .compact {
                let prompt = "\(legs),\(heads)=", answer = "\(rabbits),\(chickens)"
                var e = Example(prompt: prompt, target: answer, answer: answer, rule: ruleText(of: task), a: a, b: b)
                let legsDigits = String(legs).count, headsDigits = String(heads).count
                e.sources = SourceKeys.allOperandDigits(target: answer, operandPositions: Array(0..<legsDigits)
                                                            + Array((legsDigits + 1)..<(legsDigits + 1 + headsDigits)))
                return e
            }
            let lead = "Rabbits have 4 legs and 1 head. Chickens have 2 legs and 1 head. There are "
            let prompt = lead + "\(legs) legs and \(heads) heads on the farm. How many rabbits and chickens are there?"
            let answer = "There are \(rabbits) rabbits and \(chickens) chickens."
            var e = Example(prompt: prompt, target: answer, answer: answer, rule: ruleText(of: task), a: a, b: b)
            let legsStart = lead.count, headsStart = legsStart + String(legs).count + " legs and ".count
            e.sources = SourceKeys.allOperandDigits(target: answer, operandPositions: Array(legsStart..<(legsStart + String(legs).count))
                                                        + Array(headsStart..<(headsStart + String(heads).count)))
            return e
        default:
            preconditionFailure("\(task.rawValue) is not an operand task")
        }
    }
}
