//! What wakes the main loop: each source, bus or timer, becomes one `Wake`, and messages for
//! the core become its inputs here. Nothing is decided in this file.

use super::anti_entropy::Findings;
use super::shell::Shell;
use std::time::Instant;
use swarm_bus::zenoh::{HeldQuery, MemberEvent, Received, TypedSubscriber};
use swarm_bus::{Command, Proposal, Vote};
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
    TasksDue,
    AnnounceDue,
    /// The leader calls for this node's ballot.
    BallotCall(HeldQuery<Proposal>),
    /// A proposal, for the leader to put to the swarm.
    Proposal(HeldQuery<Proposal>),
    Core(Input),
    Command(Command),
    Stop(&'static str),
}

/// How long the election goes without a tick when it has no timer running.
const ELECTION_IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

impl Shell {
    /// Waits for the next thing to happen.
    pub async fn next(
        &mut self,
        stop: &mut (impl std::future::Future<Output = &'static str> + Unpin),
    ) -> Wake {
        // Woken exactly when the election's next timer is due, not on a polling tick.
        let wakeup = match self.core.next_wakeup() {
            Some(at) => self.epoch.instant(at),
            None => Instant::now() + ELECTION_IDLE_TICK,
        };
        // tokio's timer rounds up to the next millisecond: a deadline already due (the first
        // in rank after the leader went) is fed at once instead.
        let due = async {
            if wakeup > Instant::now() {
                tokio::time::sleep_until(wakeup.into()).await;
            }
        };
        let bus = &mut self.bus;
        tokio::select! {
            _ = due => Wake::ElectionDue,
            _ = self.pace.heartbeat.tick() => Wake::HeartbeatDue,
            _ = self.pace.energy.tick() => Wake::EnergyDue,
            _ = self.pace.anti_entropy.tick() => Wake::SurveyDue,
            Some(found) = self.surveys.recv() => Wake::Surveyed(found),
            _ = self.ticks.retune.tick() => Wake::RetuneDue,
            _ = self.ticks.save.tick() => Wake::SaveDue,
            _ = self.ticks.tasks.tick() => Wake::TasksDue,
            _ = self.ticks.announce.tick() => Wake::AnnounceDue,
            Some(q) = bus.proposals.calls.recv() => Wake::BallotCall(q),
            Some(q) = bus.proposals.asks.recv() => Wake::Proposal(q),
            Some(r) = bus.announcements.recv() => Wake::Core(Input::LeaderInfo(r.msg)),
            Some(r) = bus.heartbeats.recv() => Wake::Core(Input::Heartbeat { from: r.from, hb: r.msg }),
            Some(r) = first_of(&bus.votes, &bus.replies) => Wake::Core(Input::Vote { from: r.from, vote: r.msg }),
            Some(r) = bus.leaves.recv() => Wake::Core(Input::Leave { from: r.from, term: r.msg.term }),
            Some(r) = next_of(&bus.energies) => Wake::Core(Input::PeerEnergy { from: r.from, sample: r.msg }),
            Some(r) = bus.commands.recv() => Wake::Command(r.msg),
            Some(event) = bus.members.recv() => Wake::Core(match event {
                MemberEvent::Joined(peer) => Input::TokenAppeared(peer),
                MemberEvent::Left(peer) => Input::TokenGone(peer),
            }),
            signal = stop => Wake::Stop(signal),
        }
    }
}

/// The next message of either subscription.
async fn first_of(a: &TypedSubscriber<Vote>, b: &TypedSubscriber<Vote>) -> Option<Received<Vote>> {
    tokio::select! {
        Some(r) = a.recv() => Some(r),
        Some(r) = b.recv() => Some(r),
        else => None,
    }
}

/// The next message of a subscription this node may not hold; never, when it holds none.
pub async fn next_of<T: swarm_bus::codec::Decode>(
    sub: &Option<TypedSubscriber<T>>,
) -> Option<Received<T>> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
