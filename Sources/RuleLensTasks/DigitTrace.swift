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
        switch format {
        case .direct:
            return Example(prompt: "\(sa)+\(sb)=", target: answer, answer: answer, rule: rule, a: a, b: b)
        case .scratchpad:
            var lines = scratchpad(sa, sb, base: base)
            if let m = modulus { lines.append("\(a + b)%\(m)=\(answer)") }
            lines.append(answer)
            return Example(prompt: "\(sa)+\(sb)=", target: lines.joined(separator: "\n"), answer: answer,
                           rule: rule, a: a, b: b)
        case .rule:
            let prompt = ruleCode(base: base, modulus: modulus) + "\nadd(\(sa),\(sb))="
            var lines = execution(sa, sb, base: base, modulus: modulus, sum: a + b)
            lines.append(answer)
            return Example(prompt: prompt, target: lines.joined(separator: "\n"), answer: answer,
                           rule: rule, a: a, b: b)
        }
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
