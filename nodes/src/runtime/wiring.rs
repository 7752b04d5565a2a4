//! The node's subscriptions and publishers on the bus, declared once at start.

use super::heartbeat_feed::HeartbeatFeed;
use super::proposals::{self, Proposals};
use swarm_bus::zenoh::{self as bus, DropCounters, MemberWatch, TypedPublisher, TypedSubscriber};
use swarm_bus::{Energy, Heartbeat, LeaderInfo, Leaf, Leave, NodeId, SwarmEnergy, SwarmKeys};
use swarm_bus::{Vote, VoteRequest};
use zenoh::Session;

pub struct Bus {
    pub heartbeats: HeartbeatFeed,
    /// A leader of a large swarm announces itself here; its followers hear no other heartbeat.
    pub announcements: TypedSubscriber<LeaderInfo>,
    pub announcer: TypedPublisher<LeaderInfo>,
    pub leaves: TypedSubscriber<Leave>,
    /// Only the leader gathers peers' energy (docs/protocol.md#scale): a follower does not
    /// subscribe, so zenoh does not send it samples it has no use for.
    pub energies: Option<TypedSubscriber<Energy>>,
    /// Requests from every candidate; replies only those addressed to this node.
    pub votes: TypedSubscriber<Vote>,
    pub replies: TypedSubscriber<Vote>,
    pub commands: TypedSubscriber<swarm_bus::Command>,
    pub members: MemberWatch,
    pub heartbeat: TypedPublisher<Heartbeat>,
    /// Periodic and superseded by the next sample: dropped under congestion rather than
    /// stalling the loop (and with it heartbeats and signal handling).
    pub energy: TypedPublisher<Energy>,
    pub swarm_energy: TypedPublisher<SwarmEnergy>,
    /// A lost vote costs one retry; a vote queued behind a frozen peer would stall the loop.
    pub vote_requests: TypedPublisher<VoteRequest>,
    pub proposals: Proposals,
}

impl Bus {
    pub async fn open(
        session: &Session,
        keys: &SwarmKeys,
        id: &NodeId,
        drops: &DropCounters,
    ) -> anyhow::Result<Bus> {
        let d = || drops.clone();
        Ok(Bus {
            heartbeats: HeartbeatFeed::new(session, keys, d()).await?,
            announcements: bus::subscribe_swarm_level::<LeaderInfo>(
                session,
                keys.leader(),
                d(),
                |info| info.node.clone(),
            )
            .await?,
            announcer: TypedPublisher::declare(session, keys.leader(), false).await?,
            leaves: bus::subscribe(session, keys.all(Leaf::Leave), d()).await?,
            energies: None,
            votes: bus::subscribe(session, keys.all(Leaf::Vote), d()).await?,
            replies: bus::subscribe(session, keys.vote_replies_to(id), d()).await?,
            commands: bus::subscribe(session, keys.node_leaf(id, Leaf::Cmd), d()).await?,
            members: bus::watch_members(session, keys).await?,
            heartbeat: TypedPublisher::declare(session, keys.heartbeat(id), false).await?,
            energy: TypedPublisher::declare(session, keys.energy(id), false).await?,
            swarm_energy: TypedPublisher::declare(session, keys.swarm_energy(), false).await?,
            vote_requests: TypedPublisher::declare(session, keys.node_leaf(id, Leaf::Vote), false)
                .await?,
            proposals: proposals::declare(session, keys, id, d()).await?,
        })
    }

    /// Subscribes to every member's energy while this node leads, and drops the subscription
    /// when it no longer does.
    pub async fn gather_energy(
        &mut self,
        session: &Session,
        keys: &SwarmKeys,
        leads: bool,
        drops: &DropCounters,
    ) {
        if !leads {
            self.energies = None;
        } else if self.energies.is_none() {
            match bus::subscribe::<Energy>(session, keys.all(Leaf::Energy), drops.clone()).await {
                Ok(s) => self.energies = Some(s),
                Err(e) => tracing::warn!("leader without peers' energy: {e}"),
            }
        }
    }
}
