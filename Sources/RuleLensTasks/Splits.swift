import RuleLensNumerics

/// Leave-square-out and holes: where the held-out squares go.
public enum Splits {
    /// Throws unless every point of `square` is an example of `task` (inside its plane).
    public static func checkSquareFits(_ square: Square, task: TaskName) throws {
        guard let plane = OperandTasks.plane(of: task) else { return }
        guard square.half >= 0 else {
            throw RuleLensError("--half \(square.half) is negative", fix: "give a half-length L ≥ 0 (L = 10 gives 441 test points)")
        }
        let a0 = square.centerA - square.half, a1 = square.centerA + square.half
        let b0 = square.centerB - square.half, b1 = square.centerB + square.half
        var outside: (Int, Int)? = nil
        outer: for a in a0...a1 {
            for b in b0...b1 where !plane.contains(a: a, b: b, task: task) { outside = (a, b); break outer }
        }
        if let (a, b) = outside {
            let shape = task == .chickensRabbits
                ? "heads ≤ legs/2 ≤ 2·heads, heads \(plane.bMin)…\(plane.bMax)"
                : "\(plane.aName) \(plane.aMin)…\(plane.aMax) × \(plane.bName) \(plane.bMin)…\(plane.bMax)"
            throw RuleLensError(
                "the square of half-length L=\(square.half) around (\(square.centerA),\(square.centerB)) reaches "
                    + "(\(plane.aName)=\(a), \(plane.bName)=\(b)), outside the \(task.rawValue) plane (\(shape))",
                fix: "use a smaller --half or move --center so the square stays inside the plane")
        }
    }

    /// Places `count` non-overlapping squares at random (seeded) inside the plane of `task`, each with a
    /// half-length drawn from `halfRange` (PAPERS.md: 10…19). Throws when they cannot be placed.
    public static func placeHoles(count: Int, halfRange: ClosedRange<Int>, task: TaskName, seed: UInt64) throws -> [Square] {
        guard count >= 1 else {
            throw RuleLensError("--holes \(count) is below 1", fix: "give the number of squares to hold out, e.g. --holes 3")
        }
        guard halfRange.lowerBound >= 0 else {
            throw RuleLensError("hole half-lengths \(halfRange) include negative values", fix: "use half-lengths ≥ 0")
        }
        let points = OperandTasks.points(of: task).count
        let smallest = (2 * halfRange.lowerBound + 1) * (2 * halfRange.lowerBound + 1)
        let impossible = RuleLensError(
            "cannot place \(count) non-overlapping squares with half-lengths \(halfRange.lowerBound)…\(halfRange.upperBound) "
                + "inside the \(task.rawValue) plane (\(points) points)",
            fix: "ask for fewer --holes (the published variant uses 3), or use --split leave-square-out")
        if count * smallest >= points { throw impossible }
        var rng = SeededRNG(seed: seed, stream: "holes")
        let plane = OperandTasks.plane(of: task)!
        // Rejection sampling with restarts: a bad early square can block later ones, so start over.
        for _ in 0..<200 {
            var placed: [Square] = []
            var tries = 0
            while placed.count < count && tries < 2000 {
                tries += 1
                let half = halfRange.lowerBound + rng.int(below: halfRange.count)
                let spanA = plane.aMax - plane.aMin - 2 * half, spanB = plane.bMax - plane.bMin - 2 * half
                guard spanA >= 0, spanB >= 0 else { continue }
                let sq = Square(centerA: plane.aMin + half + rng.int(below: spanA + 1),
                                centerB: plane.bMin + half + rng.int(below: spanB + 1), half: half)
                if placed.contains(where: { $0.overlaps(sq) }) { continue }
                if (try? checkSquareFits(sq, task: task)) == nil { continue }
                placed.append(sq)
            }
            if placed.count == count { return placed }
        }
        throw impossible
    }
}

/// n-digit addition for length generalisation: operands of equal digit count d (no leading zeros).
public enum MultiDigit {
    /// Up to `count` distinct (a, b) pairs, d drawn uniformly from `digits` per example. Fewer come back
    /// when the range has fewer distinct pairs (one-digit addition has 100).
    public static func sample(count: Int, digits: ClosedRange<Int>, format: TaskFormat, rng: inout SeededRNG) -> [Example] {
        var seen = Set<String>()
        return sample(count: count, digits: digits, format: format, rng: &rng, seen: &seen)
    }

    static func sample(count: Int, digits: ClosedRange<Int>, format: TaskFormat, rng: inout SeededRNG,
                       seen: inout Set<String>) -> [Example] {
        var out: [Example] = []
        var attempts = 0
        while out.count < count && attempts < 20 * count {
            attempts += 1
            let d = digits.lowerBound + rng.int(below: digits.count)
            let a = number(digits: d, rng: &rng), b = number(digits: d, rng: &rng)
            guard seen.insert("\(a)+\(b)").inserted else { continue }
            out.append(OperandTasks.example(task: .multiDigitAddition, a: a, b: b, format: format))
        }
        return out
    }

    static func number(digits d: Int, rng: inout SeededRNG) -> Int {
        if d == 1 { return rng.int(below: 10) }
        var n = 1 + rng.int(below: 9)
        for _ in 1..<d { n = n * 10 + rng.int(below: 10) }
        return n
    }
}
