//! What wakes the main loop: each source, bus or timer, becomes one `Wake` (`shell/listen.rs`
//! waits for them); a message for the core arrives as its input.

use super::anti_entropy::Findings;
use swarm_bus::zenoh::HeldQuery;
use swarm_bus::{Command, Proposal};
use swarm_node::node::Input;

pub enum Wake {
    /// The election's next timer is due.
    ElectionDue,
    HeartbeatDue,
    EnergyDue,
    SurveyDue,
    Surveyed(Findings),
    RetuneDue,
    SaveDue,
    AnnounceDue,
    /// The leader calls for this node's ballot.
    BallotCall(HeldQuery<Proposal>),
    /// A proposal, for the leader to put to the swarm.
    Proposal(HeldQuery<Proposal>),
    Core(Input),
    Command(Command),
    Stop(&'static str),
}
