import NIOConcurrencyHelpers
import NIOCore

extension UpstreamConnectionPool {
    /// Why an upgrade toward the apiserver did not start.
    enum UpgradeFailure: Error {
        /// No connection could be made.
        case unreachable(any Error)
        /// Connected, but the handshake failed (not a refusal, which is an answer).
        case handshakeFailed(any Error)
    }

    /// No answer to an upgrade within ``UpstreamConnectionPool/upgradeTimeout``.
    struct UpgradeTimedOut: Error, CustomStringConvertible {
        let timeout: TimeAmount
        var description: String {
            "the Kubernetes API server did not answer within \(timeout.nanoseconds / 1_000_000_000) s"
        }
    }

    /// Runs `handshake` on a connection from ``leaseForUpgrade(on:)``. A pooled connection the
    /// apiserver closed while it sat idle fails before any answer; then the handshake runs once
    /// more on a new connection. Nothing ran on the pod: a SPDY exec starts only once the client
    /// has opened its streams after the upgrade.
    ///
    /// An answer that does not come within ``upgradeTimeout`` closes the connection and fails the
    /// upgrade (no retry): the client, which has no timeout of its own, is told instead of waiting
    /// forever.
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
            return .success((leased.channel, try await timed(handshake, on: leased.channel)))
        } catch let error as UpgradeTimedOut {
            return .failure(.handshakeFailed(error))
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
            return .success((fresh, try await timed(handshake, on: fresh)))
        } catch {
            fresh.close(promise: nil)
            return .failure(.handshakeFailed(error))
        }
    }

    /// `handshake` on `channel`, which is closed when no answer came within ``upgradeTimeout``.
    private func timed<Answer>(
        _ handshake: (any Channel) async throws -> Answer, on channel: any Channel
    ) async throws -> Answer {
        let timedOut = NIOLockedValueBox(false)
        let timer = channel.eventLoop.scheduleTask(in: upgradeTimeout) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            return try await handshake(channel)
        } catch  where timedOut.withLockedValue({ $0 }) {
            throw UpgradeTimedOut(timeout: upgradeTimeout)
        }
    }
}
