/// Delta Chat's push device tokens and the rules for posting them to the notification proxy.
///
/// A client stores its token with `SETMETADATA "INBOX" (/private/devicetoken "openpgp:...")`;
/// every token an account sends is kept (one per device). When mail arrives for the account the
/// server posts each token, unchanged, to the proxy, which wakes that device.
public enum PushToken {
    /// The METADATA entry (on `mailbox`) that carries a device token.
    public static let entry = "/private/devicetoken"
    public static let mailbox = "INBOX"

    public enum Problem: Error, Equatable, Sendable {
        case empty
        case tooLong(max: Int)
        /// Anything but printable ASCII without spaces (CR, LF, NUL, other controls, 8-bit bytes).
        case invalidByte
    }

    /// Why `token` cannot be a device token, or nil when it can: 1 to `maxBytes` bytes of
    /// printable ASCII (core's `openpgp:` plus base64, or an older plain token).
    public static func problem(_ token: [UInt8], maxBytes: Int) -> Problem? {
        if token.isEmpty { return .empty }
        if token.count > maxBytes { return .tooLong(max: maxBytes) }
        if !token.allSatisfy({ (0x21...0x7E).contains($0) }) { return .invalidByte }
        return nil
    }
}

/// When a failed post is tried again: base^n seconds after the n-th failure (8, 64, 512, ...),
/// the last try at `giveUpAfter` seconds after the notification was queued; a failure then
/// gives it up.
public struct PushSchedule: Sendable, Equatable {
    public var base: Int64
    public var giveUpAfter: Int64

    public init(base: Int64 = 8, giveUpAfter: Int64 = 5 * 3600) {
        self.base = max(1, base)
        self.giveUpAfter = max(0, giveUpAfter)
    }

    /// When to post again after `failures` (at least 1) failed posts, the last at `now`, of a
    /// notification queued at `since`; nil: give up.
    public func retry(failures: Int, since: Int64, now: Int64) -> Int64? {
        let deadline = since + giveUpAfter
        guard now < deadline else { return nil }
        var delay: Int64 = 1
        for _ in 0..<max(1, failures) where delay < giveUpAfter {
            delay = delay.multipliedReportingOverflow(by: base).overflow ? giveUpAfter : delay * base
        }
        return min(now + delay, deadline)
    }
}

/// How the proxy answered a post.
public enum PushResult: Equatable, Sendable {
    /// 200: the device will be woken.
    case delivered
    /// 410: the token is no longer valid; it is deleted.
    case gone
    /// Any other status, a timeout, a refused connection: tried again later.
    case failed(String)

    public init(status: Int) {
        switch status {
        case 200: self = .delivered
        case 410: self = .gone
        default: self = .failed("status \(status)")
        }
    }
}

/// A queued notification as the worker took it: one per device token, however many messages
/// arrived for the account meanwhile (they coalesce: each raises `generation`).
public struct PendingPush: Equatable, Sendable {
    /// The token's row id.
    public var tokenID: Int64
    public var token: [UInt8]
    /// Deliveries since the notification was queued, as seen when the worker took it.
    public var generation: Int64
    /// When it was queued (the give-up deadline counts from here).
    public var since: Int64
    /// Failed posts so far.
    public var failures: Int

    public init(tokenID: Int64, token: [UInt8], generation: Int64, since: Int64, failures: Int) {
        self.tokenID = tokenID
        self.token = token
        self.generation = generation
        self.since = since
        self.failures = failures
    }
}

/// What becomes of a queued notification after a post.
public enum PushSettlement: Equatable, Sendable {
    /// Posted, and no mail came meanwhile: removed from the queue.
    case done
    /// Posted, but mail came while the post was under way: post once more, now.
    case again
    /// The proxy said the token is gone: the token (and its notification) is deleted.
    case deleteToken
    /// Failed: post again at `due`.
    case retry(due: Int64, failures: Int)
    /// Failed for longer than the schedule allows: removed from the queue.
    case drop

    /// The settlement of `pending` after a post with `result`, when the queue now holds
    /// `generation` for it.
    public static func after(
        _ result: PushResult, pending: PendingPush, generation: Int64, schedule: PushSchedule, now: Int64
    ) -> PushSettlement {
        switch result {
        case .delivered: return generation == pending.generation ? .done : .again
        case .gone: return .deleteToken
        case .failed:
            let failures = pending.failures + 1
            guard let due = schedule.retry(failures: failures, since: pending.since, now: now) else { return .drop }
            return .retry(due: due, failures: failures)
        }
    }
}
