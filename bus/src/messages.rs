//! Every message type on the bus. Field order is wire order: append, never reorder.

use crate::names::NodeId;
use alloc::string::String;
use alloc::vec::Vec;

/// A text that names no variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}; allowed: {allowed}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub allowed: &'static str,
}

wire_enum! {
    /// A node's part in the election.
    pub enum Role {
        Follower = 0 => "follower",
        Candidate = 1 => "candidate",
        Leader = 2 => "leader",
        /// Never stands or votes: class `minimal` devices and short-lived CLI sessions.
        Observer = 3 => "observer",
    }
}

wire_enum! {
    /// What a node can take on; `minimal` never leads.
    pub enum DeviceClass {
        Full = 0 => "full",
        Standard = 1 => "standard",
        Minimal = 2 => "minimal",
    }
}

wire_enum! {
    /// Where a power figure comes from, best first in issue order.
    pub enum PowerSource {
        /// Device profile idle/max watts × CPU utilisation: an estimate.
        Model = 0 => "model",
        Rapl = 1 => "rapl",
        Battery = 2 => "battery",
        /// An INA219/INA226-style power monitor.
        Monitor = 3 => "monitor",
        /// Figures the device's own firmware reported.
        Device = 4 => "device",
    }
}

wire_enum! {
    /// Gossip cadence mode, as a multiple of the base interval.
    pub enum CadenceMode {
        Aggressive = 0 => "aggressive",
        Normal = 1 => "normal",
        Conservative = 2 => "conservative",
        Emergency = 3 => "emergency",
    }
}

impl CadenceMode {
    /// The interval multiplier in halves: aggressive ½×, normal 1×, conservative 2×,
    /// emergency 4×. Nodes and the firmware scale their base intervals by it.
    pub fn interval_halves(self) -> u64 {
        match self {
            CadenceMode::Aggressive => 1,
            CadenceMode::Normal => 2,
            CadenceMode::Conservative => 4,
            CadenceMode::Emergency => 8,
        }
    }

    /// Whichever of the two reports less often.
    pub fn slower(self, other: CadenceMode) -> CadenceMode {
        if self.interval_halves() >= other.interval_halves() {
            self
        } else {
            other
        }
    }

    /// The slowest mode a battery at `pct` % allows, moving from the floor in force now: below
    /// `critical` emergency, below `low` conservative; none (`Normal`) on mains (`None`) or
    /// while charging. A floor rises at its threshold and falls only `margin` points above
    /// it, so a battery hovering at a threshold does not flap. Nodes and the firmware share it.
    pub fn battery_floor(
        self,
        pct: Option<u8>,
        charging: bool,
        low: u8,
        critical: u8,
        margin: u8,
    ) -> CadenceMode {
        let Some(pct) = pct.filter(|_| !charging) else {
            return CadenceMode::Normal;
        };
        let below = |threshold: u8, mode: CadenceMode| {
            if self.slower(mode) == self {
                pct < threshold.saturating_add(margin)
            } else {
                pct < threshold
            }
        };
        if below(critical, CadenceMode::Emergency) {
            CadenceMode::Emergency
        } else if below(low, CadenceMode::Conservative) {
            CadenceMode::Conservative
        } else {
            CadenceMode::Normal
        }
    }
}

/// A CadenceMode's `SetMode` argument that unpins instead of naming a mode.
pub const UNPIN_MODE: u32 = 255;

wire_enum! {
    /// What a `Command` asks; `arg` is read per operation.
    pub enum CommandOp {
        /// arg: heartbeat interval in ms.
        SetInterval = 0 => "set_interval",
        /// arg: a `CadenceMode` number pins the mode; 255 unpins it.
        SetMode = 1 => "set_mode",
        /// arg: seconds to blink or otherwise show itself.
        Identify = 2 => "identify",
        /// arg: seconds of deep sleep (devices).
        Sleep = 3 => "sleep",
        /// arg: unused.
        Reboot = 4 => "reboot",
    }
}

wire_message! {
    /// Sent by every node at its cadence on `swarm/<s>/node/<id>/heartbeat`.
    pub struct Heartbeat = 1 {
        pub term: u64,
        pub role: Role,
        /// Whom the sender follows. A leader leaves it out: the key already names it (see
        /// [`Heartbeat::leader_of`]).
        pub leader: Option<NodeId>,
        /// Increments by one per heartbeat: gaps tell peers about loss.
        pub seq: u64,
        /// The sender's current heartbeat interval, so peers judge staleness against it.
        pub cadence_ms: u32,
        pub class: DeviceClass,
        ;
        /// A leader's count of voters, itself included. Followers of a large swarm hear only
        /// the leader, so this is how they know what a majority is.
        pub voters: Option<u32>,
    }
}

impl Heartbeat {
    /// Whom the sender of this heartbeat follows: itself when it leads.
    pub fn leader_of<'a>(&'a self, sender: &'a NodeId) -> Option<&'a NodeId> {
        if self.role == Role::Leader {
            Some(sender)
        } else {
            self.leader.as_ref()
        }
    }
}

wire_message! {
    /// A candidate asks for votes (or, with `pre_vote`, whether it could win).
    pub struct VoteRequest = 2 {
        pub term: u64,
        pub pre_vote: bool,
        pub class: DeviceClass,
        /// How many voters the candidate counts, itself included. A voter that knows of more
        /// refuses: a candidate that has not yet seen the whole swarm could otherwise win a
        /// majority of the part it sees.
        pub voters: u32,
    }
}

wire_message! {
    /// A voter's answer, published on the voter's own `vote` key.
    pub struct VoteReply = 3 {
        pub term: u64,
        pub candidate: NodeId,
        pub granted: bool,
        pub pre_vote: bool,
    }
}

/// What arrives on a `vote` key: requests and replies share it and differ by tag.
#[derive(Debug, Clone, PartialEq)]
pub enum Vote {
    Request(VoteRequest),
    Reply(VoteReply),
}

impl crate::codec::Decode for Vote {
    const NAME: &'static str = "Vote";
    fn decode_from(bytes: &[u8]) -> Result<Self, crate::codec::DecodeError> {
        use crate::codec::{DecodeError, decode, peek_header};
        use crate::wire::WireMessage;
        let tag = peek_header(bytes)?.tag;
        if tag == u64::from(VoteRequest::TAG) {
            decode(bytes).map(Vote::Request)
        } else if tag == u64::from(VoteReply::TAG) {
            decode(bytes).map(Vote::Reply)
        } else {
            Err(DecodeError::WrongType {
                expected: "Vote",
                found: alloc::format!("message tag {tag}"),
            })
        }
    }
}

wire_message! {
    /// Power and energy telemetry of one node (`swarm/<s>/node/<id>/energy`).
    pub struct Energy = 4 {
        /// Unix time of the sample, ms.
        pub ts_ms: u64,
        pub watts: f32,
        pub source: PowerSource,
        pub cpu_pct: u8,
        pub temp_c: Option<f32>,
        pub battery_pct: Option<u8>,
        pub charging: Option<bool>,
        /// Cumulative energy since the node's state directory was created.
        pub wh_total: f32,
        pub co2_g: f32,
    }
}

wire_message! {
    /// A node's full view of itself, served on `swarm/<s>/node/<id>/state`.
    pub struct NodeState = 5 {
        pub class: DeviceClass,
        pub role: Role,
        pub term: u64,
        pub leader: Option<NodeId>,
        pub seq: u64,
        pub cadence_ms: u32,
        pub uptime_s: u64,
        /// Unix time of the node's last heartbeat, ms: a reader's "heartbeat age".
        pub last_heartbeat_ms: u64,
        pub version: String,
        /// Peers whose liveliness token this node sees.
        pub peers: Vec<NodeId>,
        /// Messages from the bus this node dropped as undecodable.
        pub dropped: u64,
        /// The cadence mode in force, and whether an operator pinned it.
        pub cadence_mode: CadenceMode,
        pub cadence_pinned: bool,
    }
}

wire_message! {
    /// Who leads, as one node sees it (`swarm/<s>/leader`).
    pub struct LeaderInfo = 6 {
        /// The node answering.
        pub node: NodeId,
        pub role: Role,
        pub term: u64,
        /// `None` while no leader is known.
        pub leader: Option<NodeId>,
        /// Unix time the current leader took office, ms.
        pub since_ms: Option<u64>,
        ;
        /// The leader's count of voters, itself included, when the leader answers or
        /// announces itself (docs/protocol.md#scale).
        pub voters: Option<u32>,
        /// In the leader's announcements: the voter to stand first should the leader's token
        /// go.
        pub heir: Option<NodeId>,
    }
}

wire_message! {
    /// An order for one node (`swarm/<s>/node/<id>/cmd`).
    pub struct Command = 7 {
        pub op: CommandOp,
        pub arg: u32,
    }
}

wire_message! {
    /// Said once by a node that stops cleanly (`swarm/<s>/node/<id>/leave`), so peers drop it at once.
    pub struct Leave = 8 {
        pub term: u64,
    }
}
