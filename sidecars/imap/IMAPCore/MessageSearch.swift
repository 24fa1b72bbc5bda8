/// SEARCH over the selected mailbox: every key must match (RFC 3501's implicit AND). Sets are
/// resolved once, not per message.
struct MessageSearch {
    let keys: [SearchKey]
    /// The coalesced ranges of each key that is a set (empty for the others).
    private let ranges: [[ClosedRange<UInt32>]]
    private let uids: [UInt32]

    /// `uids` is the selection by sequence number (index 0 is message 1).
    init(_ keys: [SearchKey], uids: [UInt32]) {
        self.keys = keys
        self.uids = uids
        let count = UInt32(uids.count)
        ranges = keys.map { key in
            switch key {
            case .uid(let set): set.coalesced(last: uids.last)
            case .sequence(let set): set.coalesced(last: count == 0 ? nil : count)
            default: []
            }
        }
    }

    /// The matching messages of the selection, ascending; `messages` gives their flags (a UID
    /// missing there has gone and never matches).
    func run(_ messages: [MessageInfo]) -> [(sequence: UInt32, uid: UInt32)] {
        let flagsByUID = Dictionary(messages.map { ($0.uid, Set($0.flags)) }, uniquingKeysWith: { first, _ in first })
        var found: [(sequence: UInt32, uid: UInt32)] = []
        for (index, uid) in uids.enumerated() {
            guard let flags = flagsByUID[uid] else { continue }
            let sequence = UInt32(index + 1)
            if matches(uid: uid, sequence: sequence, flags: flags) { found.append((sequence, uid)) }
        }
        return found
    }

    func matches(uid: UInt32, sequence: UInt32, flags: Set<String>) -> Bool {
        zip(keys, ranges).allSatisfy { key, ranges in
            switch key {
            case .all: true
            case .seen: flags.contains(Flag.seen)
            case .unseen: !flags.contains(Flag.seen)
            case .deleted: flags.contains(Flag.deleted)
            case .undeleted: !flags.contains(Flag.deleted)
            case .flagged: flags.contains(Flag.flagged)
            case .unflagged: !flags.contains(Flag.flagged)
            case .answered: flags.contains(Flag.answered)
            case .unanswered: !flags.contains(Flag.answered)
            case .uid: SequenceSet.contains(uid, in: ranges)
            case .sequence: SequenceSet.contains(sequence, in: ranges)
            }
        }
    }
}
