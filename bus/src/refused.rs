//! Why a node's admission refuses a message: shared by the cores that decide it and the
//! counters that count it.

/// Why a well-formed message was refused before any state saw it (the node's admission gate,
/// docs/protocol.md#admission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its sender holds no liveliness token: not a member.
    NonMember,
    /// A new token while the member table is full.
    MembersFull,
    /// A term above the ceiling, or too far above any term this node knows.
    ImplausibleTerm,
    /// A device (class `minimal`) claimed a part in the election.
    DeviceClaim,
    /// A count of voters no swarm within the member limit can have.
    ImplausibleCount,
    /// A task order from a node that is not the leader this node follows, in its term.
    NotLeader,
    /// More work than this node's slots allow, or a second ballot while one is open.
    Busy,
}

impl Refused {
    pub const ALL: [Refused; 7] = [
        Refused::NonMember,
        Refused::MembersFull,
        Refused::ImplausibleTerm,
        Refused::DeviceClaim,
        Refused::ImplausibleCount,
        Refused::NotLeader,
        Refused::Busy,
    ];

    /// The counter's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::NonMember => "non_member",
            Refused::MembersFull => "members_full",
            Refused::ImplausibleTerm => "implausible_term",
            Refused::DeviceClaim => "device_claim",
            Refused::ImplausibleCount => "implausible_count",
            Refused::NotLeader => "not_leader",
            Refused::Busy => "busy",
        }
    }
}

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
