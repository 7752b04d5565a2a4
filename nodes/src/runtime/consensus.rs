//! The adapter between the sans-IO election core and the bus: it stores what the core asks to
//! store before sending what follows, and publishes votes on this node's `vote` key.

use super::vote_store::VoteStore;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, BusError, TypedPublisher};
use swarm_bus::{DeviceClass, Heartbeat, LeaderInfo, Leaf, NodeId, Role, SwarmKeys, VoteRequest};
use swarm_node::election::{Action, Election, Event, Settings};
use zenoh::Session;

/// Who leads, as this node now sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Leadership {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
}

pub struct Consensus {
    election: Election,
    store: VoteStore,
    requests: TypedPublisher<VoteRequest>,
    /// Replies go to each candidate's own key, so only the candidate receives them.
    session: Session,
    keys: SwarmKeys,
    /// Votes sent since the last `take_sent`, for the cadence's count of this node's sending.
    sent: u64,
}

impl Consensus {
    pub async fn start(
        session: &Session,
        keys: &SwarmKeys,
        id: &NodeId,
        settings: Settings,
        store: VoteStore,
        now: Instant,
    ) -> Result<Self, BusError> {
        let key = keys.node_leaf(id, Leaf::Vote);
        // A lost vote costs one retry; a vote queued behind a frozen peer would stall the loop.
        let requests = TypedPublisher::declare(session, key, false).await?;
        let election = Election::new(
            id.clone(),
            settings,
            store.loaded().clone(),
            now,
            random_seed(),
        );
        Ok(Self {
            election,
            store,
            requests,
            session: session.clone(),
            keys: keys.clone(),
            sent: 0,
        })
    }

    /// Stores voters learnt since the last tick; called on a clean stop.
    pub fn save_voters(&mut self) {
        if let Some(voters) = self.election.unsaved_voters()
            && let Err(e) = self.store.voters(voters)
        {
            tracing::warn!("voter set not stored on stop: {e}");
        }
    }

    pub fn announced_voters(&self, now: Instant) -> Option<u32> {
        self.election.announced_voters(now)
    }

    /// Votes sent since the last call.
    pub fn take_sent(&mut self) -> u64 {
        std::mem::take(&mut self.sent)
    }

    pub fn voter_ids(&self) -> Vec<NodeId> {
        self.election.voter_ids()
    }

    pub fn hears_everyone(&self, now: Instant) -> bool {
        self.election.hears_everyone(now)
    }

    pub fn announces(&self, now: Instant) -> bool {
        self.election.announces(now)
    }

    pub fn me(&self) -> &NodeId {
        self.election.me()
    }

    pub fn heir(&self, now: Instant) -> Option<NodeId> {
        self.election.heir(now)
    }

    pub fn leader(&self) -> Option<&NodeId> {
        self.election.leader()
    }

    pub fn next_wakeup(&self) -> Option<Instant> {
        self.election.next_wakeup()
    }

    /// Feeds one event; returns the new leadership when it changed.
    pub async fn feed(&mut self, now: Instant, event: Event) -> Option<Leadership> {
        let mut changed = None;
        // Once a write fails, nothing that depended on it may leave this node.
        let mut unsafe_to_send = false;
        for action in self.election.handle(now, event) {
            match action {
                Action::PersistVote { term, voted_for } => {
                    if let Err(e) = self.store.vote(term, voted_for) {
                        tracing::error!("vote not stored, so not sent: {e}");
                        unsafe_to_send = true;
                    }
                }
                Action::PersistVoters(voters) => {
                    if let Err(e) = self.store.voters(voters) {
                        tracing::error!("voter set not stored, so no vote sent: {e}");
                        unsafe_to_send = true;
                    }
                }
                Action::RequestVotes(req) if !unsafe_to_send => {
                    tracing::debug!(
                        term = req.term,
                        pre_vote = req.pre_vote,
                        voters = req.voters,
                        "asking for votes"
                    );
                    self.sent += 1;
                    if let Err(e) = self.requests.put(&req).await {
                        tracing::warn!("{e}");
                    }
                }
                Action::Reply(reply) if !unsafe_to_send => {
                    tracing::debug!(candidate = %reply.candidate, term = reply.term, pre_vote = reply.pre_vote, granted = reply.granted, "vote");
                    let key = self.keys.vote_reply(self.election.me(), &reply.candidate);
                    self.sent += 1;
                    if let Err(e) = bus::publish_droppable(&self.session, &key, &reply).await {
                        tracing::warn!("{e}");
                    }
                }
                Action::RequestVotes(_) | Action::Reply(_) => {}
                Action::Changed { role, term, leader } => {
                    changed = Some(Leadership { role, term, leader })
                }
            }
        }
        changed
    }
}

/// How long a starting node waits for the swarm to say who leads.
const ASK_TIMEOUT: Duration = Duration::from_millis(300);

impl Consensus {
    /// Feeds what other nodes say about the leadership to the election, as the heartbeats it
    /// would have heard: on joining (so a starting node knows the leader and the voters at
    /// once instead of inferring them from heartbeats that may have gone out before its
    /// subscriptions were in place) and after each anti-entropy round. Each answer counts as
    /// a heartbeat from the node answering; admission has already vetted them.
    pub async fn learn_leaders(&mut self, infos: Vec<LeaderInfo>) -> Option<Leadership> {
        let mut changed = None;
        for info in infos {
            let heir = info
                .heir
                .clone()
                .filter(|_| info.role == Role::Leader)
                .map(|heir| Event::Heir {
                    leader: info.node.clone(),
                    term: info.term,
                    heir,
                });
            let hb = Heartbeat {
                term: info.term,
                role: info.role,
                leader: info.leader,
                seq: 0,
                cadence_ms: 0,
                // Only "votes or not" matters to the election.
                class: if info.role == Role::Observer {
                    DeviceClass::Minimal
                } else {
                    DeviceClass::Standard
                },
                voters: None,
            };
            let event = Event::Heartbeat {
                from: info.node,
                hb,
            };
            if let Some(l) = self.feed(Instant::now(), event).await {
                changed = Some(l);
            }
            if let Some(heir) = heir {
                self.feed(Instant::now(), heir).await;
            }
        }
        changed
    }
}

/// Every node's answer on `swarm/<s>/leader`; unreadable replies are skipped.
pub async fn who_leads(session: &Session, keys: &SwarmKeys) -> Vec<LeaderInfo> {
    match bus::query_cbor::<LeaderInfo>(session, &keys.leader(), ASK_TIMEOUT).await {
        Ok(replies) => replies.into_iter().filter_map(|r| r.msg.ok()).collect(),
        Err(e) => {
            tracing::warn!("asking who leads: {e}");
            Vec::new()
        }
    }
}

/// Different on every start, so nodes started together draw different timeouts.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
