//! Swarm-wide decisions at run time: every node votes when the leader calls; the leader counts
//! the voters' ballots, has every node that answered apply what a majority accepted, and
//! answers the proposer with every vote (docs/protocol.md#swarm-wide-decisions).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, BusError, DropCounters, HeldQuery, HeldQueryable, Refused};
use swarm_bus::{Ballot, Command, Decision, Leaf, NodeId, Proposal, SwarmKey, SwarmKeys};
use swarm_node::proposals::{Local, Tally, Verdict, vote_on};

/// How long the leader waits for ballots.
const BALLOT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Proposals {
    /// The leader's call for this node's vote.
    pub calls: HeldQueryable<Proposal>,
    /// Proposals; only the leader answers.
    pub asks: HeldQueryable<Proposal>,
    /// Set while a ballot is open: one at a time, so a flood of proposals costs one ballot.
    open: Arc<AtomicBool>,
    drops: DropCounters,
}

/// Closes the ballot it opened when dropped, however its ballot ends.
pub struct OpenBallot(Arc<AtomicBool>);

impl Drop for OpenBallot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Proposals {
    /// Opens the swarm's ballot for `q`, or refuses `q` (counted as `busy`) while one is open.
    pub async fn open(&self, q: HeldQuery<Proposal>) -> Option<(OpenBallot, HeldQuery<Proposal>)> {
        if self
            .open
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Some((OpenBallot(self.open.clone()), q));
        }
        let n = self.drops.count_refused(Refused::Busy);
        if bus::worth_logging(n) {
            tracing::warn!(
                count = n,
                reason = "busy",
                "proposal refused: a ballot is open"
            );
        }
        q.reply_err("a ballot is open; propose again once it is decided")
            .await;
        None
    }
}

pub async fn declare(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    me: &NodeId,
    drops: DropCounters,
) -> Result<Proposals, BusError> {
    Ok(Proposals {
        calls: bus::serve_held(session, keys.node_leaf(me, Leaf::Ballot), drops.clone()).await?,
        asks: bus::serve_held(session, keys.proposal(), drops.clone()).await?,
        open: Arc::new(AtomicBool::new(false)),
        drops,
    })
}

/// Answers the leader's call with this node's vote, under this node's own key.
pub async fn vote(q: HeldQuery<Proposal>, my_ballot_key: &str, local: Local) {
    let Some(p) = q.msg.as_ref() else {
        return q.reply_err("a call to vote carries the proposal").await;
    };
    let ballot = match vote_on(p.op, p.arg, local) {
        Ok(()) => Ballot {
            yes: true,
            reason: None,
        },
        Err(reason) => Ballot {
            yes: false,
            reason: Some(reason),
        },
    };
    q.reply(my_ballot_key, &ballot).await;
}

/// The leader's part, run in the background: calls the vote, counts, applies, answers; the
/// ballot closes when this returns.
pub async fn decide(
    session: zenoh::Session,
    keys: SwarmKeys,
    term: u64,
    voters: Vec<NodeId>,
    (_open, q): (OpenBallot, HeldQuery<Proposal>),
) {
    let Some(p) = q.msg.clone() else {
        return q.reply_err("a proposal carries a command").await;
    };
    let mut tally = Tally::new(voters);
    match bus::ask_with::<Proposal, Ballot>(&session, &keys.all(Leaf::Ballot), &p, BALLOT_TIMEOUT)
        .await
    {
        Ok(replies) => {
            for r in replies {
                if let (Some(from), Ok(b)) = (SwarmKey::node_of(&r.key), r.msg) {
                    tally.vote(from, b.yes);
                }
            }
        }
        Err(e) => tracing::warn!("calling the vote: {e}"),
    }
    let accepted = tally.verdict() == Verdict::Accepted;
    if accepted {
        let cmd = Command {
            op: p.op,
            arg: p.arg,
        };
        for node in tally.yes.iter().chain(&tally.no) {
            if let Err(e) = bus::publish(&session, &keys.node_leaf(node, Leaf::Cmd), &cmd).await {
                tracing::warn!("applying the decision on {node}: {e}");
            }
        }
    }
    tracing::info!(
        op = %p.op, arg = p.arg, accepted,
        yes = tally.yes.len(), no = tally.no.len(), ignored = tally.ignored.len(),
        voters = tally.voters(), "proposal decided"
    );
    let decision = Decision {
        term,
        op: p.op,
        arg: p.arg,
        accepted,
        voters: u32::try_from(tally.voters()).unwrap_or(u32::MAX),
        yes: tally.yes.into_iter().collect(),
        no: tally.no.into_iter().collect(),
        ignored: tally.ignored.into_iter().collect(),
    };
    q.reply(&keys.proposal(), &decision).await;
}
