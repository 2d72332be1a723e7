/// The three ways an addition is written: direct, scratchpad (digit-by-digit with a carry flag) and
/// rule-following (the digit loop's code in the prompt, its execution line by line in the target).
public enum DigitTrace {
    /// `n` written in `base` (bases 2…10).
    public static func digits(_ n: Int, base: Int) -> String { String(n, radix: base) }

    /// One addition example. Operands are stored in decimal (`a`, `b`); the text uses `base`.
    /// With a `modulus`, the answer is (a + b) mod modulus, written in decimal.
    public static func example(a: Int, b: Int, base: Int, modulus: Int?, format: TaskFormat, rule: String) -> Example {
        let sa = digits(a, base: base), sb = digits(b, base: base)
        let answer = modulus.map { String((a + b) % $0) } ?? digits(a + b, base: base)
        var example: Example
        switch format {
        case .direct, .compact:  // an addition's direct form is already compact (TaskSpec refuses `compact` here)
            example = Example(prompt: "\(sa)+\(sb)=", target: answer, answer: answer, rule: rule, a: a, b: b)
        case .scratchpad:
            var lines = scratchpad(sa, sb, base: base)
            if let m = modulus { lines.append("\(a + b)%\(m)=\(answer)") }
            lines.append(answer)
            example = Example(prompt: "\(sa)+\(sb)=", target: lines.joined(separator: "\n"), answer: answer,
                              rule: rule, a: a, b: b)
        case .rule:
            let prompt = ruleCode(base: base, modulus: modulus) + "\nadd(\(sa),\(sb))="
            var lines = execution(sa, sb, base: base, modulus: modulus, sum: a + b)
            lines.append(answer)
            example = Example(prompt: prompt, target: lines.joined(separator: "\n"), answer: answer,
                              rule: rule, a: a, b: b)
        }
        example.sources = sources(example, sa: sa, sb: sb, format: format, columnAligned: modulus == nil)
        return example
    }

    /// Source keys (see `SourceKeys`): the operands are the last `sa+sb=` (or `add(sa,sb)=`) of the prompt.
    static func sources(_ e: Example, sa: String, sb: String, format: TaskFormat, columnAligned: Bool) -> [[Int]] {
        let aStart = e.prompt.count - (sa.count + sb.count + (format == .rule ? 3 : 2))
        let bStart = aStart + sa.count + 1
        let operandPositions = Array(aStart..<(aStart + sa.count)) + Array(bStart..<(bStart + sb.count))
        let targetLength = e.target.count
        /// The final answer, column by column or from every operand digit.
        func answerSources(into sources: inout [[Int]], answerStart: Int) {
            let answer = e.answer ?? ""
            if columnAligned {
                let columns = SourceKeys.columns(targetLength: targetLength, answerStart: answerStart, answer: answer,
                                                 aStart: aStart, aDigits: sa.count, bStart: bStart, bDigits: sb.count)
                for i in answerStart..<(answerStart + answer.count) { sources[i] = columns[i] }
            } else {
                for (k, c) in answer.enumerated() where c.isNumber { sources[answerStart + k] = operandPositions }
            }
        }
        var sources = [[Int]](repeating: [], count: targetLength)
        let answerStart = targetLength - (e.answer ?? "").count
        answerSources(into: &sources, answerStart: answerStart)
        guard format == .scratchpad else { return sources }
        // Scratchpad steps: "x+y,partial,C:carry". x and y copy the prompt's unprocessed digits; the first partial digit
        // and the carry come from this step's column (place = step − 1); the rest of partial repeats the previous line.
        let lines = e.target.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var lineStart = 0
        for (step, line) in lines.enumerated() {
            defer { lineStart += line.count + 1 }
            guard let plus = line.firstIndex(of: "+"), line.contains(",C:") else { continue }
            let x = line[..<plus].count, fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let y = fields[0].count - x - 1
            for k in 0..<x { sources[lineStart + k] = [aStart + k] }
            for k in 0..<y { sources[lineStart + x + 1 + k] = [bStart + k] }
            guard step > 0 else { continue }
            let place = step - 1
            var column: [Int] = []
            if place < sa.count { column.append(aStart + sa.count - 1 - place) }
            if place < sb.count { column.append(bStart + sb.count - 1 - place) }
            if column.isEmpty { column = [aStart, bStart] }           // the carry-out step
            let partialStart = lineStart + fields[0].count + 1
            if !fields[1].isEmpty { sources[partialStart] = column }
            sources[lineStart + line.count - 1] = column             // the carry digit
        }
        return sources
    }

    /// The scratchpad trace of PAPERS.md: state lines `A+B,partial,C:carry`, one digit per step,
    /// e.g. 98+7 → `98+7,,C:0`, `9+,5,C:1`, `+,05,C:1`, `+,105,C:0` (the bare answer follows).
    public static func scratchpad(_ a: String, _ b: String, base: Int) -> [String] {
        var x = Array(a), y = Array(b)
        var partial = "", carry = 0
        var lines = ["\(a)+\(b),,C:0"]
        while !x.isEmpty || !y.isEmpty {
            let d1 = x.popLast().map { Int(String($0), radix: base)! } ?? 0
            let d2 = y.popLast().map { Int(String($0), radix: base)! } ?? 0
            let total = d1 + d2 + carry
            partial = String(total % base, radix: base) + partial
            carry = total / base
            lines.append("\(String(x))+\(String(y)),\(partial),C:\(carry)")
        }
        if carry > 0 {
            partial = String(carry, radix: base) + partial
            lines.append("+,\(partial),C:0")
        }
        return lines
    }

    /// The rule given to the model in the rule-following format: the digit loop as code.
    public static func ruleCode(base: Int, modulus: Int?) -> String {
        let ret = modulus.map { "  return join(result)%\($0)" } ?? "  return join(result)"
        return """
        def add(num1,num2):
          num1=digits(num1);num2=digits(num2)
          result=[];carry=0
          while num1 or num2:
            digit1=num1.pop() if num1 else 0
            digit2=num2.pop() if num2 else 0
            total=digit1+digit2+carry
            result.insert(0,total%\(base))
            carry=total//\(base)
          if carry:
            result.insert(0,carry)
        \(ret)
        """
    }

    /// The line-by-line execution of `ruleCode` on (a, b), ending with the `return` line.
    public static func execution(_ a: String, _ b: String, base: Int, modulus: Int?, sum: Int) -> [String] {
        func list(_ d: [Character]) -> String { "[" + d.map(String.init).joined(separator: ",") + "]" }
        var x = Array(a), y = Array(b), result: [Character] = []
        var carry = 0
        var lines = ["num1=\(list(x)),num2=\(list(y))", "result=[],carry=0"]
        while !x.isEmpty || !y.isEmpty {
            lines.append("while num1 or num2: True")
            let d1 = x.popLast().map { Int(String($0), radix: base)! } ?? 0
            lines.append("digit1=\(d1),num1=\(list(x))")
            let d2 = y.popLast().map { Int(String($0), radix: base)! } ?? 0
            lines.append("digit2=\(d2),num2=\(list(y))")
            let total = d1 + d2 + carry
            lines.append("total=digit1+digit2+carry=\(d1)+\(d2)+\(carry)=\(total)")
            result.insert(Character(String(total % base, radix: base)), at: 0)
            lines.append("total%\(base)=\(total % base),result=\(list(result))")
            lines.append("carry=total//\(base)=\(total)//\(base)=\(total / base)")
            carry = total / base
        }
        lines.append("while num1 or num2: False")
        if carry > 0 {
            result.insert(Character(String(carry, radix: base)), at: 0)
            lines.append("if carry: \(carry),result=\(list(result))")
        } else {
            lines.append("if carry: 0")
        }
        let joined = String(result)
        if let m = modulus {
            lines.append("return \(joined)%\(m)=\(sum % m)")
        } else {
            lines.append("return \(joined)")
        }
        return lines
    }
}

/// Reading answers back: the one function eval uses for every task and format.
public enum Answer {
    /// The final answer in a target or a model's output: its last non-empty line, without surrounding
    /// whitespace. Direct targets are one line, so this is the whole target; scratchpad and rule targets
    /// end with the bare answer.
    public static func extract(_ output: String) -> String {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: true)
        for line in lines.reversed() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if !t.isEmpty { return t }
        }
        return ""
    }
}

import Foundation
