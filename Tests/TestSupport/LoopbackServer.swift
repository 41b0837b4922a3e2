import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP server on 127.0.0.1 that stands in for a process listening inside a pod: the node agent
/// forwards a pod's port N to 127.0.0.1:N, so port-forward tests talk to this.
public final class LoopbackServer: @unchecked Sendable {
    public enum Behaviour: Sendable {
        /// Answers every HTTP request with `body` and closes.
        case http(body: Data)
        /// Writes back whatever it reads until the client half-closes.
        case echo
    }

    public let port: Int
    private let listener: Int32
    private let behaviour: Behaviour
    private let lock = NSLock()
    private var accepted = 0

    /// How many connections reached the server so far.
    public var acceptedConnections: Int { lock.withLock { accepted } }

    /// - Parameter port: 0 for any free port.
    public init(_ behaviour: Behaviour, port: Int = 0) throws {
        self.behaviour = behaviour
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TestSupportError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw TestSupportError("bind/listen: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 { return }
            lock.withLock { accepted += 1 }
            let behaviour = self.behaviour
            Thread.detachNewThread {
                Self.serve(connection, behaviour)
                close(connection)
            }
        }
    }

    private static func serve(_ connection: Int32, _ behaviour: Behaviour) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        switch behaviour {
        case .echo:
            while true {
                let count = read(connection, &buffer, buffer.count)
                if count <= 0 { return }
                guard writeAll(connection, buffer[0..<count]) else { return }
            }
        case .http(let body):
            var request = Data()
            while !request.contains(Data("\r\n\r\n".utf8)) {
                let count = read(connection, &buffer, buffer.count)
                if count <= 0 { return }
                request.append(contentsOf: buffer[0..<count])
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            _ = writeAll(connection, Array(head.utf8)[...]) && writeAll(connection, Array(body)[...])
        }
    }

    private static func writeAll(_ connection: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var remaining = bytes
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            if written <= 0 { return false }
            remaining = remaining.dropFirst(written)
        }
        return true
    }
}
