import Foundation
import RuleLensJobs

// Swift side of `make bench`. Each benchmark prints one JSON line; Benchmarks/run.py pairs them
// with the reference implementation's numbers and prints the side-by-side table.
BLASEnvironment.ensureCoreTypeOrReexec()
print("{\"bench\": \"none\"}")
