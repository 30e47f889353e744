// glibc's mallopt, which no module map exports (it lives in <malloc.h>).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

public enum Malloc {
    /// Keeps freed large blocks in the heap: per-step message buffers (0.1–1 MB) would
    /// otherwise be mmapped, page-faulted and unmapped afresh every step.
    public static func keepLargeBlocksInHeap() {
        let mmapThreshold: Int32 = -3
        let trimThreshold: Int32 = -1  // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        _ = glibcMallopt(mmapThreshold, 16 << 20)  // glibc caps this at 32 MiB on 64-bit
        _ = glibcMallopt(trimThreshold, 64 << 20)
    }
}
