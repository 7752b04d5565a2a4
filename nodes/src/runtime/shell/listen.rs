//! Waits for the next thing to happen: one `select!` over every source, bus or timer. A
//! message for the core becomes its input here; nothing is decided.

use super::Shell;
use crate::runtime::recv::{first_of, next_of};
use crate::runtime::wake::Wake;
use std::time::Instant;
use swarm_bus::zenoh::MemberEvent;
use swarm_node::node::Input;

/// How many membership changes in a row go before everything else, so a flood of tokens cannot
/// starve the loop.
const MEMBERS_FIRST_STREAK: u8 = 32;

/// How long the election goes without a tick when it has no timer running.
const ELECTION_IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

impl Shell {
    /// Waits for the next thing to happen.
    pub async fn next(
        &mut self,
        stop: &mut (impl std::future::Future<Output = &'static str> + Unpin),
    ) -> Wake {
        // A token is declared before its holder speaks, and zenoh hands both over in that
        // order; left to `select!`'s random pick, a member's first heartbeat could be judged
        // before its token and refused as a stranger's.
        if self.members_streak < MEMBERS_FIRST_STREAK
            && let Some(event) = self.bus.members.try_recv()
        {
            self.members_streak += 1;
            return member_wake(event);
        }
        self.members_streak = 0;
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
        let announcing = self.core.election().announces(self.now());
        let bus = &mut self.bus;
        tokio::select! {
            _ = due => Wake::ElectionDue,
            _ = self.pace.heartbeat.tick() => Wake::HeartbeatDue,
            _ = self.pace.energy.tick() => Wake::EnergyDue,
            _ = self.pace.anti_entropy.tick() => Wake::SurveyDue,
            Some(found) = self.surveys.recv() => Wake::Surveyed(found),
            _ = self.ticks.retune.tick() => Wake::RetuneDue,
            _ = self.ticks.save.tick() => Wake::SaveDue,
            _ = self.ticks.announce.tick(), if announcing => Wake::AnnounceDue,
            Some(q) = bus.proposals.calls.recv() => Wake::BallotCall(q),
            Some(q) = bus.proposals.asks.recv() => Wake::Proposal(q),
            Some(r) = bus.announcements.recv() => Wake::Core(Input::LeaderInfo(r.msg)),
            Some(r) = bus.heartbeats.recv() => Wake::Core(Input::Heartbeat { from: r.from, hb: r.msg }),
            Some(r) = first_of(&bus.votes, &bus.replies) => Wake::Core(Input::Vote { from: r.from, vote: r.msg }),
            Some(r) = bus.leaves.recv() => Wake::Core(Input::Leave { from: r.from, term: r.msg.term }),
            Some(r) = next_of(&bus.energies) => Wake::Core(Input::PeerEnergy { from: r.from, sample: r.msg }),
            Some(r) = bus.commands.recv() => Wake::Command(r.msg),
            Some(event) = bus.members.recv() => member_wake(event),
            signal = stop => Wake::Stop(signal),
        }
    }
}

fn member_wake(event: MemberEvent) -> Wake {
    Wake::Core(match event {
        MemberEvent::Joined(peer) => Input::TokenAppeared(peer),
        MemberEvent::Left(peer) => Input::TokenGone(peer),
    })
}
