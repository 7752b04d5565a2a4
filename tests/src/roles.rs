//! What a node's own log says about its part in the election: every `election role=… term=…
//! leader=…` line it wrote when its role, term or leader changed. Read from the log, the node
//! speaks for itself even when no query could reach it (a cut-off node).

use std::collections::{BTreeMap, BTreeSet};

/// One `election` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLine {
    pub role: String,
    pub term: u64,
    pub leader: Option<String>,
}

impl RoleLine {
    pub fn leads(&self) -> bool {
        self.role == "leader"
    }
}

/// Every `election` line of a log, in order.
pub fn role_lines(log: &str) -> Vec<RoleLine> {
    log.lines()
        .map(without_colour)
        .filter_map(|l| parse(&l))
        .collect()
}

/// The node's role now, as its latest `election` line says; `None` before its first.
pub fn current_role(log: &str) -> Option<RoleLine> {
    role_lines(log).pop()
}

/// For each term, every node whose log says it led in that term.
pub fn leaders_by_term<'a>(
    logs: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<u64, BTreeSet<String>> {
    let mut out: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (id, log) in logs {
        for line in role_lines(&log).into_iter().filter(RoleLine::leads) {
            out.entry(line.term).or_default().insert(id.to_string());
        }
    }
    out
}

fn parse(line: &str) -> Option<RoleLine> {
    let at = line.find(" election role=")?;
    let rest = &line[at + " election ".len()..];
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(name).map(str::to_string))
    };
    let role = field("role=")?;
    let term = field("term=")?.parse().ok()?;
    // `leader=Some("n1")` or `leader=None`.
    let leader = field("leader=")?;
    let leader = leader
        .strip_prefix("Some(\"")
        .and_then(|l| l.strip_suffix("\")"))
        .map(str::to_string);
    Some(RoleLine { role, term, leader })
}

/// A log line without its ANSI colour codes.
pub fn without_colour(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_lines_are_read_with_or_without_colour() {
        let log = "2026-12-05T10:00:00Z  INFO swarm_node::runtime: node running\n\
            2026-12-05T10:00:01Z  INFO swarm_node::runtime: election role=leader term=3 leader=Some(\"n1\")\n\
            \u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mswarm_node::runtime\u{1b}[0m\u{1b}[2m:\u{1b}[0m election \u{1b}[3mrole\u{1b}[0m\u{1b}[2m=\u{1b}[0mfollower \u{1b}[3mterm\u{1b}[0m\u{1b}[2m=\u{1b}[0m4 \u{1b}[3mleader\u{1b}[0m\u{1b}[2m=\u{1b}[0mNone\n";
        let lines = role_lines(log);
        assert_eq!(
            lines,
            vec![
                RoleLine {
                    role: "leader".into(),
                    term: 3,
                    leader: Some("n1".into())
                },
                RoleLine {
                    role: "follower".into(),
                    term: 4,
                    leader: None
                },
            ]
        );
        let by_term = leaders_by_term([("n1", log.to_string())]);
        assert_eq!(by_term.len(), 1);
        assert!(by_term[&3].contains("n1"));
    }
}
