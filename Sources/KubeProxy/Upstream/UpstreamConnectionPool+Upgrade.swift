import NIOCore

extension UpstreamConnectionPool {
    /// Why an upgrade toward the apiserver did not start.
    enum UpgradeFailure: Error {
        /// No connection could be made.
        case unreachable(any Error)
        /// Connected, but the handshake failed (not a refusal, which is an answer).
        case handshakeFailed(any Error)
    }

    /// Runs `handshake` on a connection from ``leaseForUpgrade(on:)``. A pooled connection the
    /// apiserver closed while it sat idle fails before any answer; then the handshake runs once
    /// more on a new connection. Nothing ran on the pod: a SPDY exec starts only once the client
    /// has opened its streams after the upgrade.
    func upgrade<Answer>(
        on eventLoop: any EventLoop, _ handshake: (any Channel) async throws -> Answer
    ) async -> Result<(channel: any Channel, answer: Answer), UpgradeFailure> {
        let leased: (channel: any Channel, reused: Bool)
        do {
            leased = try await leaseForUpgrade(on: eventLoop).get()
        } catch {
            return .failure(.unreachable(error))
        }
        do {
            return .success((leased.channel, try await handshake(leased.channel)))
        } catch  where leased.reused && !leased.channel.isActive {
            leased.channel.close(promise: nil)
        } catch {
            leased.channel.close(promise: nil)
            return .failure(.handshakeFailed(error))
        }
        let fresh: any Channel
        do {
            fresh = try await connect(on: eventLoop, http: false).get()
        } catch {
            return .failure(.unreachable(error))
        }
        do {
            return .success((fresh, try await handshake(fresh)))
        } catch {
            fresh.close(promise: nil)
            return .failure(.handshakeFailed(error))
        }
    }
}
