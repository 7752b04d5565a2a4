//! Every message type on the bus. Field order is wire order: append, never reorder.

use crate::names::{NodeId, TaskId};
use crate::payload::Payload;
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
        /// An INA219 power monitor on I2C (3 was "monitor" before the chips were told apart).
        Ina219 = 3 => "ina219",
        /// Figures the device's own firmware reported.
        Device = 4 => "device",
        /// An INA226 power monitor on I2C.
        Ina226 = 5 => "ina226",
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
        /// arg: the Unix second that starts as the command is sent: the gateway's time, for a
        /// board with no clock of its own (docs/bridge.md#time).
        Time = 5 => "time",
    }
}

/// The highest election term the protocol accepts: 2^53 − 1, the largest integer every JSON
/// reader keeps exact. At an election a millisecond a swarm would need 285,000 years to get
/// there, so a term above it is a forgery or a bug, and refusing it keeps `term + 1` defined.
pub const MAX_TERM: u64 = (1 << 53) - 1;

/// How far above the highest term a node knows a message's term may be. Honest terms grow by
/// one an election, so a swarm never moves 2^32 past a node it has met; a buggy member's
/// jump to just under [`MAX_TERM`] is refused instead of leaving the swarm at a term that
/// can no longer grow.
pub const MAX_TERM_JUMP: u64 = 1 << 32;

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
        /// When it was sent, in Unix ms, from a sender whose clock is borrowed: a board
        /// stamps its heartbeats with the gateway's time (docs/bridge.md#time), so the bridge
        /// can tell its skew between readings. Nodes, whose clocks are their own, leave it out.
        pub at_ms: Option<u64>,
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

wire_enum! {
    /// How urgent a task is; higher runs first.
    pub enum Priority {
        Low = 0 => "low",
        Normal = 1 => "normal",
        High = 2 => "high",
        Critical = 3 => "critical",
    }
}

wire_enum! {
    /// Where a task is in its life.
    pub enum TaskState {
        Queued = 0 => "queued",
        Running = 1 => "running",
        Succeeded = 2 => "succeeded",
        Failed = 3 => "failed",
        Cancelled = 4 => "cancelled",
        /// Run on several workers whose answers decided nothing (no majority, too few in
        /// time, none valid): final, with every answer attached.
        Undecided = 5 => "undecided",
    }
}

impl TaskState {
    /// Succeeded, failed or cancelled: nothing will happen to the task any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Undecided
        )
    }
}

wire_enum! {
    /// How the answers of a task run on several workers become one (docs/tasks.md#federated).
    pub enum TaskPick {
        /// The first successful answer; the other replicas are cancelled.
        FirstValid = 0 => "first-valid",
        /// The output more than half of the replicas gave, byte for byte.
        Majority = 1 => "majority",
        /// Like `majority`, each worker weighted by its reputation.
        Weighted = 2 => "weighted",
        /// The median of numeric outputs, outliers named.
        Median = 3 => "median",
        /// The mean of numeric outputs, outliers left out and named.
        Mean = 4 => "mean",
        /// The successful answer its handler scored highest.
        BestOf = 5 => "best-of",
    }
}

wire_message! {
    /// A task as its submitter asks for it (`swarm/<s>/task/<id>/submit`, a query to the leader).
    pub struct TaskSpec = 10 {
        /// A capability from the workers' own configs; never a command.
        pub cap: String,
        pub priority: Priority,
        /// Tasks that must succeed first.
        pub after: Vec<TaskId>,
        pub timeout_ms: u32,
        /// Further attempts after a failure.
        pub retries: u8,
        pub payload: Payload,
        ;
        /// Run on this many distinct workers (absent: one).
        pub replicas: Option<u8>,
        /// How their answers become one (absent: `majority`, when replicated).
        pub pick: Option<TaskPick>,
    }
}

wire_message! {
    /// Where a task stands, and its result once it has one (`swarm/<s>/task/<id>/result`).
    pub struct TaskResult = 11 {
        pub state: TaskState,
        pub worker: Option<NodeId>,
        pub attempts: u32,
        pub exit_code: Option<i32>,
        pub output: Payload,
        pub duration_ms: u32,
        ;
        /// Energy the run cost, where the worker could tell.
        pub joules: Option<f32>,
        /// Why it failed or was refused, for people.
        pub reason: Option<String>,
        /// The handler's own score of its answer (`best-of`), from `$SWARM_SCORE_FILE`.
        pub score: Option<f64>,
        /// A task run on several workers: every replica's answer and its vote.
        pub answers: Option<Vec<TaskAnswer>>,
        /// The value decided by `median` or `mean`.
        pub value: Option<f64>,
    }
}

wire_message! {
    /// One replica of a task run on several workers: who runs it, what it answered, and
    /// whether that agrees with the decision. In a `TaskRecord` while the vote runs (so a new
    /// leader resumes it), in the final `TaskResult` after.
    pub struct TaskAnswer = 19 {
        pub worker: NodeId,
        pub attempt: u32,
        /// `running` until it answers, then `succeeded` or `failed`.
        pub state: TaskState,
        pub output: Payload,
        ;
        pub score: Option<f64>,
        pub joules: Option<f32>,
        /// Its vote once decided: it agrees with the decision, or dissents.
        pub agrees: Option<bool>,
    }
}

wire_message! {
    /// A yes or no about a task (`swarm/<s>/task/<id>/submit` and `cancel`, answered by the
    /// leader; `spec`, answered by each voter that stored the record).
    pub struct TaskAck = 12 {
        pub accepted: bool,
        /// Who answers: the leader, or the voter that stored the record.
        pub by: NodeId,
        ;
        /// Why not, for people.
        pub reason: Option<String>,
    }
}

wire_message! {
    /// The leader hands one attempt of a task to a worker (`swarm/<s>/task/<id>/assign`).
    /// Everything the worker needs is here: it may hold no copy of the task table.
    pub struct TaskAssign = 13 {
        /// The leader's term: a worker takes no orders from a deposed leader's older term.
        pub term: u64,
        pub worker: NodeId,
        /// Counts from 1; a result names the attempt it belongs to.
        pub attempt: u32,
        pub cap: String,
        pub timeout_ms: u32,
        pub payload: Payload,
    }
}

wire_message! {
    /// What a node runs for the swarm (`swarm/<s>/node/<id>/worker`), from its own config only.
    pub struct WorkerInfo = 14 {
        pub caps: Vec<String>,
        /// Capabilities whose handler is marked idempotent: safe to run twice for one task.
        pub idempotent: Vec<String>,
        /// Tasks it runs at once.
        pub slots: u16,
    }
}

wire_message! {
    /// One task in a node's copy of the task table: replicated by the leader before it
    /// accepts (`swarm/<s>/task/<id>/spec`), and gathered by a new leader
    /// (`swarm/<s>/node/<id>/tasks`, one reply per task).
    pub struct TaskRecord = 15 {
        pub id: TaskId,
        pub spec: TaskSpec,
        pub state: TaskState,
        pub worker: Option<NodeId>,
        /// The latest attempt handed out; 0 while never run.
        pub attempt: u32,
        ;
        /// The final result, or a worker's report on the latest attempt.
        pub result: Option<TaskResult>,
        /// A task run on several workers: each replica handed out, and its answer once in.
        pub replicas: Option<Vec<TaskAnswer>>,
    }
}

wire_message! {
    /// A swarm-wide decision asked of the leader (`swarm/<s>/proposal`, a query): a command
    /// every node applies once a majority of the voters said yes.
    pub struct Proposal = 16 {
        pub op: CommandOp,
        pub arg: u32,
    }
}

wire_message! {
    /// A voter's answer to the leader's call (`swarm/<s>/node/<id>/ballot`, a reply under the
    /// voter's own key).
    pub struct Ballot = 17 {
        pub yes: bool,
        ;
        /// Why not, for people.
        pub reason: Option<String>,
    }
}

wire_message! {
    /// The leader's count of a proposal, with every vote: the answer to the proposer.
    pub struct Decision = 18 {
        pub term: u64,
        pub op: CommandOp,
        pub arg: u32,
        pub accepted: bool,
        /// Voters at the time, this leader among them.
        pub voters: u32,
        pub yes: Vec<NodeId>,
        pub no: Vec<NodeId>,
        /// Votes from nodes outside the voter set: shown, never counted.
        pub ignored: Vec<NodeId>,
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
        ;
        /// Useful work per joule as a percentage of the device's best (docs/energy.md#rating):
        /// CPU utilisation × the profile's max watts ÷ the watts drawn. `None` where unknown.
        pub eff_pct: Option<u8>,
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
        /// Messages from the bus this node dropped: undecodable, or refused by admission.
        pub dropped: u64,
        /// The cadence mode in force, and whether an operator pinned it.
        pub cadence_mode: CadenceMode,
        pub cadence_pinned: bool,
        ;
        /// Of the recent decisions on replicated tasks this node took part in (as it heard the
        /// leader's word), how many its answer agreed with, out of how many.
        pub agreed: Option<u32>,
        pub decided: Option<u32>,
        /// A board in deep sleep: the Unix ms it said it wakes at. It is present but silent
        /// until then (and a margin); its bridge holds its commands.
        pub asleep_until_ms: Option<u64>,
        /// A board's clock against its gateway's, ms (positive: the board runs ahead), from
        /// its latest live energy sample.
        pub clock_skew_ms: Option<i32>,
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

/// One part of a swarm total: the members of one class, or those whose power comes from one
/// source. Compact form `[kind, nodes, watts]`; human form an object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share<K> {
    pub kind: K,
    pub nodes: u32,
    pub watts: f32,
}

impl<K: serde::Serialize> serde::Serialize for Share<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeStruct, SerializeTuple};
        if s.is_human_readable() {
            let mut m = s.serialize_struct("Share", 3)?;
            m.serialize_field("kind", &self.kind)?;
            m.serialize_field("nodes", &self.nodes)?;
            m.serialize_field("watts", &self.watts)?;
            return m.end();
        }
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.kind)?;
        t.serialize_element(&self.nodes)?;
        t.serialize_element(&self.watts)?;
        t.end()
    }
}

impl<'de, K: serde::Deserialize<'de>> serde::Deserialize<'de> for Share<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Human<K> {
            kind: K,
            nodes: u32,
            watts: f32,
        }
        if d.is_human_readable() {
            let h = Human::<K>::deserialize(d)?;
            return Ok(Share {
                kind: h.kind,
                nodes: h.nodes,
                watts: h.watts,
            });
        }
        let (kind, nodes, watts) = <(K, u32, f32)>::deserialize(d)?;
        Ok(Share { kind, nodes, watts })
    }
}

wire_message! {
    /// The swarm's energy as its leader sums it (`swarm/<s>/energy`): every member's latest
    /// sample, nodes and bridged devices alike.
    pub struct SwarmEnergy = 9 {
        /// Unix time of the sum, ms.
        pub ts_ms: u64,
        /// The leader that summed it.
        pub leader: NodeId,
        pub term: u64,
        /// Members whose sample went into the sum.
        pub nodes: u32,
        pub watts: f32,
        pub wh_total: f32,
        pub co2_g: f32,
        pub by_class: Vec<Share<DeviceClass>>,
        pub by_source: Vec<Share<PowerSource>>,
        ;
        /// The swarm's useful work per joule as a percentage of its members' best: their
        /// `eff_pct` weighted by watts, over the members that state one.
        pub eff_pct: Option<u8>,
    }
}

/// An energy-efficiency letter, from useful work per joule as a percentage of the device's
/// best (`eff_pct`). The scale and the reasons for it: docs/energy.md#rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rating {
    APlus,
    A,
    B,
    C,
    D,
    E,
    F,
}

impl Rating {
    /// The lowest `eff_pct` of each letter, best first; below the last is F.
    pub const FLOORS: [(Rating, u8); 6] = [
        (Rating::APlus, 90),
        (Rating::A, 75),
        (Rating::B, 60),
        (Rating::C, 45),
        (Rating::D, 30),
        (Rating::E, 15),
    ];

    pub fn from_eff_pct(pct: u8) -> Rating {
        Self::FLOORS
            .iter()
            .find(|(_, floor)| pct >= *floor)
            .map_or(Rating::F, |(r, _)| *r)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rating::APlus => "A+",
            Rating::A => "A",
            Rating::B => "B",
            Rating::C => "C",
            Rating::D => "D",
            Rating::E => "E",
            Rating::F => "F",
        }
    }
}

impl core::fmt::Display for Rating {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Useful work per joule as a percentage of the device's best: at CPU utilisation `cpu`
/// (0..=1) a device does `cpu` of its full-load work, which at full load costs `max_watts`;
/// drawing `watts` for it, its work per joule is `cpu × max_watts / watts` of its best.
/// `None` when the figures cannot say (no power drawn, no profile, not finite).
pub fn efficiency_pct(cpu: f32, max_watts: f32, watts: f32) -> Option<u8> {
    if !(cpu.is_finite() && max_watts.is_finite() && watts.is_finite()) {
        return None;
    }
    if watts <= 0.0 || max_watts <= 0.0 {
        return None;
    }
    let pct = cpu.clamp(0.0, 1.0) * max_watts / watts * 100.0;
    // `+ 0.5` then truncation rounds: `f32::round` is not in `core`.
    Some((pct.clamp(0.0, 100.0) + 0.5) as u8)
}

#[cfg(test)]
mod rating_tests {
    use super::*;

    #[test]
    fn each_letter_starts_at_its_floor() {
        assert_eq!(Rating::from_eff_pct(100), Rating::APlus);
        assert_eq!(Rating::from_eff_pct(90), Rating::APlus);
        assert_eq!(Rating::from_eff_pct(89), Rating::A);
        assert_eq!(Rating::from_eff_pct(60), Rating::B);
        assert_eq!(Rating::from_eff_pct(59), Rating::C);
        assert_eq!(Rating::from_eff_pct(15), Rating::E);
        assert_eq!(Rating::from_eff_pct(14), Rating::F);
        assert_eq!(Rating::from_eff_pct(0), Rating::F);
        assert_eq!(Rating::APlus.to_string(), "A+");
    }

    #[test]
    fn efficiency_is_work_per_joule_against_the_device_best() {
        // Flat out at its max watts: its best.
        assert_eq!(efficiency_pct(1.0, 6.0, 6.0), Some(100));
        // Half the work for 4.5 W where the best costs 6 W per full load: 0.5 × 6 / 4.5.
        assert_eq!(efficiency_pct(0.5, 6.0, 4.5), Some(67));
        // Idle: power spent, no work done.
        assert_eq!(efficiency_pct(0.0, 6.0, 2.0), Some(0));
        // A measured draw below the model's max at full load is capped, not above 100.
        assert_eq!(efficiency_pct(1.0, 6.0, 3.0), Some(100));
        assert_eq!(efficiency_pct(0.5, 6.0, 0.0), None, "no power drawn");
        assert_eq!(efficiency_pct(f32::NAN, 6.0, 3.0), None);
        assert_eq!(efficiency_pct(0.5, 0.0, 3.0), None, "no profile");
    }
}
