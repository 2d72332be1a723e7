/// A contiguous, 64-byte aligned, zero-initialised buffer of `Float`s, owned by this object.
///
/// The llm.c way: every tensor is a flat buffer; its shape lives in comments and in the code that
/// indexes it. Hot loops use `ptr` directly.
public final class FloatBuffer: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// The storage. Valid for the lifetime of the buffer.
    public let ptr: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        ptr = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        ptr.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { ptr.update(from: base, count: values.count) }
        }
    }

    deinit { ptr.deallocate() }

    public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }

    /// Sets every element to zero.
    public func zero() { ptr.update(repeating: 0, count: count) }

    /// Copies the contents into a Swift array.
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }

    /// A new buffer holding the same values.
    public func copy() -> FloatBuffer {
        let out = FloatBuffer(count: count)
        out.ptr.update(from: ptr, count: count)
        return out
    }
}

/// Number of non-finite (NaN or ±inf) values among the `count` floats at `p`.
public func nonFiniteCount(_ p: UnsafePointer<Float>, _ count: Int) -> Int {
    var bad = 0
    for i in 0..<count where !p[i].isFinite { bad += 1 }
    return bad
}

extension FloatBuffer {
    /// Number of non-finite (NaN or ±inf) entries.
    public func nonFiniteCount() -> Int { RuleLensNumerics.nonFiniteCount(ptr, count) }
}
