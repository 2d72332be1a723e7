import CHDF5

/// Facts about the HDF5 library RuleLens is linked against.
public enum HDF5Library {
    /// "major.minor.release" of the linked HDF5.
    public static var version: String {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        H5get_libversion(&major, &minor, &release)
        return "\(major).\(minor).\(release)"
    }
}
