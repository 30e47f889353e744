import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Who this process is, as its log lines name it: `coordinator@host:pid`, `w3@host:pid` (a
/// worker the coordinator numbered 3), `worker@host:pid` (before it has a number),
/// `train@host:pid`… The host and pid are the ones a worker's hello carries, so a coordinator
/// naming worker 3 as `w3@host:pid` and the worker naming itself agree.
final class ProcessIdentity: @unchecked Sendable {
    static let current = ProcessIdentity(component: "convoy")

    let host: String
    let pid: Int32
    private let lock = NSLock()
    private var componentValue: String
    private var workerIDValue: UInt32?

    init(component: String, host: String = ProcessInfo.processInfo.hostName, pid: Int32 = getpid()) {
        self.componentValue = component
        self.host = host
        self.pid = pid
    }

    /// What this process does: the subcommand (`coordinator`, `worker`, `train`, `local`…).
    var component: String {
        get { lock.withLock { componentValue } }
        set { lock.withLock { componentValue = newValue } }
    }

    /// The number the coordinator gave this worker (it may change when the worker joins a
    /// restarted coordinator).
    var workerID: UInt32? {
        get { lock.withLock { workerIDValue } }
        set { lock.withLock { workerIDValue = newValue } }
    }

    /// `w<id>@host:pid` for a numbered worker, else `<component>@host:pid`.
    var name: String {
        let (component, id) = lock.withLock { (componentValue, workerIDValue) }
        return "\(id.map { "w\($0)" } ?? component)@\(host):\(pid)"
    }

    /// The start of a text line that is not an error: what each command printed before
    /// structured logs, kept so the shell tests and operators' greps still match.
    var textPrefix: String {
        switch component {
        case "worker": "worker \(pid)"
        case "local": "convoy local"
        case "coordinator", "train": component
        default: "convoy"
        }
    }
}
