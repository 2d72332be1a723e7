/// Namespace for the measurements RuleLens runs on activations.
public enum Analysis {}
