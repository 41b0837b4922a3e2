import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Minimal blocking TCP client for 127.0.0.1, for talking through a forwarded port.
public enum LoopbackClient {
    /// Sends `request` to 127.0.0.1:`port`, half-closes, and reads until the server closes.
    public static func exchange(port: Int, request: Data, timeout: Duration = .seconds(30)) async throws -> Data {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result { try exchangeBlocking(port: port, request: request, timeout: timeout) })
            }
        }
    }

    /// An HTTP/1.0 GET of `/`; returns the response body.
    public static func httpGet(port: Int) async throws -> Data {
        let response = try await exchange(port: port, request: Data("GET / HTTP/1.0\r\nHost: pod\r\n\r\n".utf8))
        guard let end = response.range(of: Data("\r\n\r\n".utf8)) else {
            throw TestSupportError("no HTTP response head in \(response.count) bytes")
        }
        return response[end.upperBound...]
    }

    private static func exchangeBlocking(port: Int, request: Data, timeout: Duration) throws -> Data {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestSupportError("connect to 127.0.0.1:\(port): errno \(errno)") }
        var offset = 0
        let bytes = [UInt8](request)
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { throw TestSupportError("write: errno \(errno)") }
            offset += written
        }
        shutdown(fd, Int32(SHUT_WR))
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { return response }
            guard count > 0 else { throw TestSupportError("read from 127.0.0.1:\(port): errno \(errno)") }
            response.append(contentsOf: buffer[0..<count])
        }
    }
}
