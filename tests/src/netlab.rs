//! A small network of namespaces for partition tests: one namespace per node, each with its
//! own address on a bridge in a hub namespace, so nftables inside a node's namespace can cut
//! that node off from chosen peers while every socket stays open (a pulled cable, Wi-Fi gone),
//! in one direction or both, or make the links lose a share of packets.

use crate::{Node, node_command};
use std::path::Path;
use std::process::Command;

/// Which packets a cut drops, seen from the cut-off side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Nothing passes either way.
    Both,
    /// The cut-off nodes hear the others, but nothing they send arrives.
    Outbound,
    /// The cut-off nodes' sends arrive, but they hear nothing.
    Inbound,
}

/// `size` namespaces `<prefix>-<pid>-<i>` on the subnet 10.77.0.0/24, plus the hub holding the
/// bridge; all deleted on drop.
pub struct NetLab {
    hub: String,
    nodes: Vec<String>,
}

impl NetLab {
    /// The lab for this test, or `None` when SWARM_SKIP_NETNS is set; panics, naming that
    /// switch, when the namespaces cannot be made.
    pub fn for_test(prefix: &str, size: usize) -> Option<NetLab> {
        if std::env::var_os("SWARM_SKIP_NETNS").is_some() {
            eprintln!("skipped: SWARM_SKIP_NETNS is set");
            return None;
        }
        Some(NetLab::create(prefix, size).unwrap_or_else(|e| {
            panic!("cannot build the namespaces ({e}); set SWARM_SKIP_NETNS=1 to skip")
        }))
    }

    pub fn create(prefix: &str, size: usize) -> Result<NetLab, String> {
        assert!(size < 200, "one /24 holds the lab");
        let base = format!("{prefix}-{}", std::process::id());
        let lab = NetLab {
            hub: format!("{base}-hub"),
            nodes: (0..size).map(|i| format!("{base}-{i}")).collect(),
        };
        lab.remove();
        ip(&["netns", "add", &lab.hub])?;
        ip(&["-n", &lab.hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &lab.hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &lab.hub, "link", "set", "br0", "up"])?;
        for (i, ns) in lab.nodes.iter().enumerate() {
            let port = format!("p{i}");
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &lab.hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ])?;
            ip(&["-n", &lab.hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &lab.hub, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", lab.addr(i));
            ip(&["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(lab)
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// A zenoh TCP endpoint on node `i`'s address.
    pub fn endpoint(&self, i: usize, port: u16) -> String {
        format!("tcp/{}:{port}", self.addr(i))
    }

    /// `swarm-node run` inside node `i`'s namespace, with `flags` after the usual ones.
    pub fn spawn(&self, dir: &Path, i: usize, swarm: &str, id: &str, flags: &[String]) -> Node {
        let mut wrapper = Command::new("ip");
        wrapper
            .args(["netns", "exec", &self.nodes[i]])
            .arg(crate::swarm_node_bin());
        let mut cmd = node_command(wrapper, dir, swarm, id);
        cmd.args(flags);
        Node::start(dir, id, 0, cmd)
    }

    /// Cuts each node of `side` off from every node of `others`, dropping packets in the
    /// chosen direction inside `side`'s namespaces, until `heal`. Sockets stay open: only
    /// zenoh's lease notices.
    pub fn cut(
        &self,
        side: &[usize],
        others: &[usize],
        direction: Direction,
    ) -> Result<(), String> {
        self.filter(side, others, direction, "drop")
    }

    /// Makes the links between `side` and `others` drop `pct` % of packets both ways.
    pub fn lossy(&self, side: &[usize], others: &[usize], pct: u8) -> Result<(), String> {
        let verdict = format!("numgen random mod 100 < {pct} drop");
        self.filter(side, others, Direction::Both, &verdict)
    }

    fn filter(
        &self,
        side: &[usize],
        others: &[usize],
        direction: Direction,
        verdict: &str,
    ) -> Result<(), String> {
        let set: Vec<String> = others.iter().map(|&o| self.addr(o)).collect();
        let set = format!("{{ {} }}", set.join(", "));
        for &i in side {
            let ns = &self.nodes[i];
            nft(ns, "add table inet partition")?;
            if direction != Direction::Inbound {
                nft(
                    ns,
                    "add chain inet partition out { type filter hook output priority 0; }",
                )?;
                nft(
                    ns,
                    &format!("add rule inet partition out ip daddr {set} {verdict}"),
                )?;
            }
            if direction != Direction::Outbound {
                nft(
                    ns,
                    "add chain inet partition in { type filter hook input priority 0; }",
                )?;
                nft(
                    ns,
                    &format!("add rule inet partition in ip saddr {set} {verdict}"),
                )?;
            }
        }
        Ok(())
    }

    /// Removes every cut and loss.
    pub fn heal(&self) -> Result<(), String> {
        for ns in &self.nodes {
            // Absent when this node was not cut.
            let _ = nft(ns, "delete table inet partition");
        }
        Ok(())
    }

    fn remove(&self) {
        for ns in self.nodes.iter().chain([&self.hub]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        self.remove();
    }
}

fn nft(ns: &str, rule: &str) -> Result<(), String> {
    ip(&["netns", "exec", ns, "nft", rule])
}

/// Runs `ip` with `args`; its error output on failure.
pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
