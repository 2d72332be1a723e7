/// The RuleLens version, written into checkpoints and HDF5 files.
public enum RuleLensVersion {
    public static let string = "0.1.0"
}
