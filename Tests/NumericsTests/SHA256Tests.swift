import XCTest
@testable import RuleLensNumerics

/// SHA-256 against the FIPS 180-4 test vectors (Python's hashlib gives the same; the interop tests also compare
/// the manifests of real checkpoints with hashlib).
final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testPiecewiseUpdatesEqualOneUpdate() {
        var rng = SeededRNG(seed: 5)
        let bytes = Data((0..<1000).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let whole = SHA256.hex(bytes)
        for pieces in [[1, 63, 64, 65, 807], [55, 1, 8, 936], [999, 1], [128, 872]] {
            var h = SHA256()
            var offset = 0
            for n in pieces { h.update(bytes.subdata(in: offset..<(offset + n))); offset += n }
            XCTAssertEqual(h.finalizeHex(), whole, "\(pieces)")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(SHA256.hex(fileAt: path), whole)
        XCTAssertNil(SHA256.hex(fileAt: path + ".missing"))
    }

    func testBLASProvenanceNamesTheKernelInForce() {
        let blas = BLASProvenance.current
        XCTAssertEqual(blas.core, BLAS.coreName)
        XCTAssertFalse(blas.core.isEmpty)
        XCTAssertTrue(blas.config.hasPrefix("OpenBLAS"), blas.config)
        XCTAssertEqual(blas.threads, Parallel.threads)
        if let env = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            XCTAssertEqual(blas.core.lowercased(), env.lowercased(), "the kernel OpenBLAS uses is the one asked for")
        }
    }
}
