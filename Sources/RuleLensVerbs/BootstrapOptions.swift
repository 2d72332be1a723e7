import ArgumentParser

/// `--bootstrap N`, shared by the verbs that give percentile-bootstrap intervals (ablate, retrieve), so both refuse
/// the same values the same way.
public struct BootstrapOptions: ParsableArguments {
    /// More resamples than this only cost time: the 2.5th and 97.5th percentiles are stable long before.
    public static let maxResamples = 1_000_000

    @Option(parsing: .unconditional, help: "Bootstrap resamples for the 95% intervals (0: none; at most 1000000).")
    public var bootstrap: Int = 1000

    public init() {}

    public func validate() throws {
        if bootstrap < 0 || bootstrap > Self.maxResamples {
            throw ValidationError("--bootstrap is \(bootstrap); pass 0 (no intervals) up to \(Self.maxResamples) resamples, e.g. --bootstrap 1000")
        }
    }
}
