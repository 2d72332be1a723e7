/// An error caused by something the user supplied (a file, an option, a configuration).
///
/// Every `RuleLensError` names the problem and the fix, so the CLI can print it as one paragraph
/// and exit non-zero. Library code throws these instead of trapping.
public struct RuleLensError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, naming the offending input (file, line, option, value).
    public let problem: String
    /// What the user should do about it.
    public let fix: String

    public init(_ problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "error: \(problem)\nfix: \(fix)" }
}
