@_exported import RuleLensNumerics
@_exported import RuleLensTasks
@_exported import RuleLensModel
@_exported import RuleLensStore
@_exported import RuleLensAnalysis
@_exported import RuleLensReport
@_exported import RuleLensInterventions
@_exported import RuleLensDistributed

/// Library-level workflows (train, eval, dump, probe). The CLI parses options and calls these;
/// Swift users can call them directly.
public enum Jobs {}
