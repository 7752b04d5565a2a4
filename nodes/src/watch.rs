//! `swarm-node watch`: follows every heartbeat in the swarm and reports each new leader and any
//! term with two leaders, and who joins and goes, until Ctrl-C.
//!
//! When this observer's own link goes it says so, and keeps the members it knew as unconfirmed
//! rather than reporting them gone (`dashboard::contact` judges which is which); once in
//! contact again it says who is still there and who left meanwhile.

use crate::config::Config;
use crate::dashboard::contact::{Contact, Seen};
use crate::dashboard::link;
use crate::signals::shutdown_signal;
use std::collections::BTreeSet;
use std::time::Duration;
use swarm_bus::clock::unix_ms;
use swarm_bus::zenoh::{self as bus, DropCounters, MemberEvent};
use swarm_bus::{Heartbeat, Leaf, NodeId, SwarmKeys};
use swarm_node::election::{ElectionObserver, Seen as Election};
use tokio::sync::mpsc;

/// How often the session's links are looked at: a loss is told within this.
const LOOK: Duration = Duration::from_millis(250);
/// Members tracked at most, as the dashboards do.
const MAX_MEMBERS: usize = 10_000;
/// Names printed on one line at most; a large swarm gets a count of the rest.
const NAMES: usize = 20;

/// Returns false when a split brain was seen.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let mut stop = Box::pin(shutdown_signal()?);
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = bus::open_observer(&config.zenoh).await?;
    let drops = DropCounters::default();
    let heartbeats =
        bus::subscribe::<Heartbeat>(&session, keys.all(Leaf::Heartbeat), drops.clone()).await?;
    let members = bus::watch_members(&session, &keys).await?;
    let mut observer = ElectionObserver::default();
    let mut told = Told::new();
    let (roll_tx, mut roll_calls) = mpsc::channel::<(u64, BTreeSet<NodeId>)>(4);
    let mut look = tokio::time::interval(LOOK);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    println!(
        "watching swarm {} for leaders (two in one term is a split brain); Ctrl-C to stop",
        keys.swarm()
    );
    loop {
        tokio::select! {
            Some(r) = heartbeats.recv() => match observer.heartbeat(&r.from, &r.msg) {
                Election::NewLeader { term, leader } => {
                    println!("{} term {term}: {leader} leads", unix_ms());
                }
                Election::SplitBrain(v) => println!(
                    "{} SPLIT BRAIN in term {}: {} and {} both lead",
                    unix_ms(), v.term, v.leaders.0, v.leaders.1
                ),
                Election::Nothing => {}
            },
            Some(m) = members.recv() => match m {
                MemberEvent::Joined(id) => {
                    if let Some(seen) = told.contact.joined(id) {
                        told.tell(unix_ms(), seen);
                    }
                }
                MemberEvent::Left(id) => told.contact.token_gone(unix_ms(), &id),
            },
            Some((epoch, present)) = roll_calls.recv() => {
                told.contact.roll_call(unix_ms(), epoch, present);
            }
            _ = look.tick() => {
                let now = unix_ms();
                for seen in told.contact.links(now, link::links(&session).await) {
                    told.tell(now, seen);
                }
                if let Some((epoch, asked)) = told.contact.roll_call_due(now) {
                    let (session, keys, tx) = (session.clone(), keys.clone(), roll_tx.clone());
                    tokio::spawn(async move {
                        if let Some(present) = link::roll_call(&session, &keys, &asked).await {
                            let _ = tx.send((epoch, present)).await;
                        }
                    });
                }
            }
            _ = &mut stop => break,
        }
    }
    let splits = observer.split_brains().len();
    println!(
        "{splits} term(s) with two leaders; {} bad message(s) dropped",
        drops.total()
    );
    drop(heartbeats);
    drop(members);
    let _ = session.close().await;
    Ok(splits == 0)
}

/// The contact judge and what of its findings has been printed.
struct Told {
    contact: Contact,
    /// The members were listed once: joins are news from then on, not the tokens already up
    /// when the watch began.
    listed: bool,
    /// Left while we could not see, gathered for the roll call's line.
    unseen: Vec<NodeId>,
}

impl Told {
    fn new() -> Self {
        Self {
            contact: Contact::new(MAX_MEMBERS),
            listed: false,
            unseen: Vec::new(),
        }
    }

    fn tell(&mut self, now_ms: u64, seen: Seen) {
        match seen {
            Seen::Joined(id) if self.listed => println!("{now_ms} {id} joined"),
            Seen::Joined(_) | Seen::Confirmed(_) => {}
            Seen::InContact { again: false, .. } => {}
            Seen::Gone { id, at_ms } => println!(
                "{at_ms} {id} gone: its token was withdrawn while this observer's link stood \
                 (a crash, a cut link or a stop)"
            ),
            Seen::Lost { at_ms } => println!(
                "{at_ms} lost contact with the swarm: this observer's own link closed; \
                 last known members, unconfirmed: {}",
                names(self.contact.known())
            ),
            Seen::InContact { at_ms, again: true } => {
                println!("{at_ms} back in contact with the swarm; asking who is still there")
            }
            Seen::Unseen(id) => self.unseen.push(id),
            Seen::RollCalled { first } => {
                let here = names(self.contact.here());
                let unseen = std::mem::take(&mut self.unseen);
                if first || !self.listed {
                    println!("{now_ms} in contact with the swarm: members {here}");
                } else {
                    println!(
                        "{now_ms} still in the swarm: {here}; gone while out of contact: {}",
                        names(unseen.iter())
                    );
                }
                self.listed = true;
            }
        }
    }
}

/// "a, b, c", "none", or the first `NAMES` and how many more.
fn names<'a>(ids: impl Iterator<Item = &'a NodeId>) -> String {
    let mut shown: Vec<&str> = Vec::new();
    let mut more = 0usize;
    for id in ids {
        if shown.len() < NAMES {
            shown.push(id.as_str());
        } else {
            more += 1;
        }
    }
    match (shown.is_empty(), more) {
        (true, _) => "none".into(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}
