//! Partition trials with real processes: a swarm in a `NetLab` (one namespace per node), a
//! fault between some nodes and the rest, each node's own role sampled from its log every
//! 250 ms, then the heal. Shared by the partition test, which asserts the bounds, and
//! `bench-partition`, which prints them.

use crate::Node;
use crate::netlab::{Direction, NetLab};
use crate::roles::{RoleLine, current_role, leaders_by_term};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every node listens on this port of its own address.
pub const PORT: u16 = 7447;
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// The default longest election timeout (`consensus.election_timeout_max_ms`).
pub const TIMEOUT_MAX: Duration = Duration::from_millis(3000);

/// What goes wrong between the chosen nodes and the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Cut(Direction),
    /// This share of packets, in percent, lost both ways.
    Loss(u8),
}

impl Fault {
    /// Whether what the faulty side sends still reaches the others: then a leader there is
    /// still heard as one.
    fn side_is_heard(self) -> bool {
        self == Fault::Cut(Direction::Inbound)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Cut(Direction::Both) => write!(f, "cut both ways"),
            Fault::Cut(Direction::Outbound) => write!(f, "cut, their sends lost"),
            Fault::Cut(Direction::Inbound) => write!(f, "cut, they hear nothing"),
            Fault::Loss(pct) => write!(f, "{pct} % loss both ways"),
        }
    }
}

/// `size` nodes `n1`…, each listening on its own address and connecting to those before it.
pub struct Swarm {
    // Dropped in this order: the processes, then their namespaces and logs.
    pub nodes: Vec<Node>,
    pub lab: NetLab,
    /// The nodes' state and logs; `None` only while being kept.
    dir: Option<tempfile::TempDir>,
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // SWARM_KEEP_LOGS=1 keeps the nodes' logs for a look afterwards.
        if std::env::var_os("SWARM_KEEP_LOGS").is_some()
            && let Some(dir) = self.dir.take()
        {
            let _ = dir.keep();
        }
    }
}

impl Swarm {
    pub fn start(lab: NetLab, swarm: &str) -> Swarm {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // A fleet of known size, configured as docs/protocol.md advises: nodes started in
        // turn cannot split the very first election (two pairs each winning term 1), which
        // the trials would otherwise report as two leaders in a term.
        let config = dir.path().join("swarm.toml");
        std::fs::write(
            &config,
            format!("[consensus]\nbootstrap_expect = {}\n", lab.size()),
        )
        .expect("the swarm's config written");
        let nodes = (0..lab.size())
            .map(|i| {
                let mut flags = vec![
                    "--config".to_string(),
                    config.display().to_string(),
                    "--no-multicast".to_string(),
                    "--listen".into(),
                    lab.endpoint(i, PORT),
                ];
                for j in 0..i {
                    flags.extend(["--connect".to_string(), lab.endpoint(j, PORT)]);
                }
                lab.spawn(dir.path(), i, swarm, &format!("n{}", i + 1), &flags)
            })
            .collect();
        if std::env::var_os("SWARM_KEEP_LOGS").is_some() {
            eprintln!("logs kept in {}", dir.path().display());
        }
        Swarm {
            nodes,
            lab,
            dir: Some(dir),
        }
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Each node's role now, by its own log.
    pub fn roles(&self) -> Vec<Option<RoleLine>> {
        self.nodes
            .iter()
            .map(|n| current_role(&n.log_text()))
            .collect()
    }

    /// One leader, followed by every node in its term: its index and the term.
    pub fn settled(&self) -> Option<(usize, u64)> {
        let roles = self.roles();
        let first = roles.first()?.as_ref()?;
        let leader = first.leader.clone()?;
        let at = self.nodes.iter().position(|n| n.id == leader)?;
        let same = roles.iter().all(|r| {
            r.as_ref()
                .is_some_and(|r| r.term == first.term && r.leader.as_deref() == Some(&leader))
        });
        (same && roles[at].as_ref()?.leads()).then_some((at, first.term))
    }

    pub fn wait_settled(&self, within: Duration) -> Result<(usize, u64), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.settled() {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no leader followed by all within {within:?}; roles {:?}",
                    self.roles()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.id, n.log_text()))
            .collect()
    }

    /// Terms in which more than one node led, by the nodes' own logs.
    pub fn split_terms(&self) -> Vec<(u64, BTreeSet<String>)> {
        leaders_by_term(self.nodes.iter().map(|n| (n.id.as_str(), n.log_text())))
            .into_iter()
            .filter(|(_, leaders)| leaders.len() > 1)
            .collect()
    }
}

/// What one fault looked like from inside, sample by sample, and how the heal went.
#[derive(Debug)]
pub struct Trial {
    pub fault: Fault,
    pub side: Vec<usize>,
    /// Whether the leader at the fault was on the faulty side.
    pub leader_on_side: bool,
    /// For each sample, the leader the majority hears, if any.
    pub leader_heard: Vec<Option<usize>>,
    /// (node, term) for every sample in which a node of the side led in a term after the
    /// fault began.
    pub side_elected: Vec<(usize, u64)>,
    /// From the heal to one leader followed by all; `None` if not within the time given.
    pub healed_in: Option<Duration>,
}

impl Trial {
    /// One character per sample: the number of the leader the majority hears, or `.`.
    pub fn line(&self) -> String {
        self.leader_heard
            .iter()
            .map(|l| {
                l.and_then(|i| char::from_digit(i as u32 + 1, 36))
                    .unwrap_or('.')
            })
            .collect()
    }

    /// Each stretch of samples without a heard leader: (first sample, length).
    pub fn stretches(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (k, l) in self.leader_heard.iter().enumerate() {
            if l.is_some() {
                continue;
            }
            match out.last_mut() {
                Some((start, len)) if *start + *len == k => *len += 1,
                _ => out.push((k, 1)),
            }
        }
        out
    }

    /// The time without a heard leader, at sample resolution.
    pub fn leaderless(&self) -> Duration {
        let samples: usize = self.stretches().iter().map(|(_, len)| len).sum();
        SAMPLE_EVERY * samples as u32
    }
}

/// Applies `fault` between `side` and the other nodes for `observe`, sampling roles, then
/// heals and waits up to `heal_within` for one leader followed by all.
pub fn trial(
    swarm: &Swarm,
    side: &[usize],
    fault: Fault,
    observe: Duration,
    heal_within: Duration,
) -> Result<Trial, String> {
    let (leader, term) = swarm.wait_settled(Duration::from_secs(30))?;
    let rest: Vec<usize> = (0..swarm.size()).filter(|i| !side.contains(i)).collect();
    match fault {
        Fault::Cut(direction) => swarm.lab.cut(side, &rest, direction)?,
        Fault::Loss(pct) => swarm.lab.lossy(side, &rest, pct)?,
    }
    let mut t = Trial {
        fault,
        side: side.to_vec(),
        leader_on_side: side.contains(&leader),
        leader_heard: Vec::new(),
        side_elected: Vec::new(),
        healed_in: None,
    };
    let start = Instant::now();
    let mut next = start;
    while next < start + observe {
        let roles = swarm.roles();
        let heard = (0..swarm.size())
            .filter(|i| !side.contains(i) || fault.side_is_heard())
            .find(|&i| roles[i].as_ref().is_some_and(RoleLine::leads));
        t.leader_heard.push(heard);
        for &i in side {
            if let Some(r) = roles[i].as_ref().filter(|r| r.leads() && r.term > term) {
                t.side_elected.push((i, r.term));
            }
        }
        next += SAMPLE_EVERY;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    swarm.lab.heal()?;
    let healed = Instant::now();
    t.healed_in = swarm
        .wait_settled(heal_within)
        .ok()
        .map(|_| healed.elapsed());
    Ok(t)
}
