import Foundation
import RuleLensNumerics

extension Communicator {
    /// Ends the program after an error, so that an `mpirun` launch prints one clear message and every rank stops.
    ///
    /// Without MPI (or with one rank): prints the error and exits 1, as RuleLens always did.
    /// A `CollectiveError` (every rank reached the same diagnosis): rank 0 prints it, every rank finalises MPI and
    /// exits 1. Any other error may be this rank's alone (a file only this node lacks), so the others could wait for
    /// it forever: the rank prints it, naming itself, and aborts the whole launch (MPI_Abort). Ranks other than 0
    /// wait two seconds first, so that when every rank fails the same way only rank 0's message appears.
    public static func exit(after error: Error) -> Never {
        let text: String
        switch error {
        case let e as CollectiveError: text = e.error.description
        case let e as RuleLensError: text = e.description
        default: text = "error: \(error)"
        }
        guard let world = existing, world.size > 1 else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
            Foundation.exit(1)
        }
        if error is CollectiveError {
            if world.isRoot { FileHandle.standardError.write(Data((text + "\n").utf8)) }
            world.finalize()
            Foundation.exit(1)
        }
        if !world.isRoot { Thread.sleep(forTimeInterval: 2) }
        let named = text.hasPrefix("error: ") ? "error (rank \(world.rank) of \(world.size)): " + text.dropFirst(7) : text
        FileHandle.standardError.write(Data((named + "\n").utf8))
        world.abort(code: 1)
    }
}
