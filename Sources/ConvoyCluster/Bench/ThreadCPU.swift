import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// CPU time of threads, for benchmarks: the calling thread's from the clock, any thread of
/// this process from /proc (Linux), so the coordinator's share can be told apart from the
/// synthetic workers' in one process.
enum ThreadCPU {
    /// CPU seconds of the calling thread.
    static func current() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Ids of this process's threads now.
    static func taskIDs() -> Set<Int> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return Set(names.compactMap { Int($0) })
    }

    static func name(_ task: Int) -> String {
        let text = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// User + system CPU seconds of thread `task` (clock-tick resolution, 10 ms), 0 if gone.
    static func seconds(task: Int) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm)": state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
