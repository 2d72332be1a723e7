/// One example of a task: what the model reads (`prompt`) and must produce (`target`).
///
/// JSONL lines carry these fields (snake_case keys); only `prompt` and `target` are required.
public struct Example: Codable, Equatable, Sendable {
    /// Stable index within its file.
    public var id: Int?
    /// Text the model is conditioned on (e.g. `"40+47="`).
    public var prompt: String
    /// Text the model must generate after the prompt (e.g. `"87"`, or a multi-line scratchpad).
    public var target: String
    /// The bare final answer (the last line of `target` for scratchpad and rule formats).
    public var answer: String?
    /// Rule label name (study 2 tasks; the operation for arithmetic tasks).
    public var rule: String?
    /// Integer id of `rule`.
    public var ruleId: Int?
    /// Operands of operand-plane tasks (study 1), in the task's own plane.
    public var a: Int?
    public var b: Int?
    /// Per target character, the prompt character positions it should be retrieved from (`SourceKeys`); `[]` = no
    /// source (a fixed word or a computed value). nil when the generator did not record them (e.g. user data).
    public var sources: [[Int]]?

    public init(id: Int? = nil, prompt: String, target: String, answer: String? = nil,
                rule: String? = nil, ruleId: Int? = nil, a: Int? = nil, b: Int? = nil) {
        self.id = id; self.prompt = prompt; self.target = target; self.answer = answer
        self.rule = rule; self.ruleId = ruleId; self.a = a; self.b = b
    }

    enum CodingKeys: String, CodingKey {
        case id, prompt, target, answer, rule, a, b, sources
        case ruleId = "rule_id"
    }
}
