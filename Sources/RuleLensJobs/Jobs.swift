/// Library-level workflows (train, eval, dump, probe). The CLI parses options and calls these;
/// Swift users can call them directly.
public enum Jobs {}
