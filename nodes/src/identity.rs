//! A node id when none is configured: the hostname, made valid.

use swarm_bus::NodeId;
use swarm_bus::names::MAX_NAME_LEN;

/// Lowercases, turns every other character into '-', trims leading separators, cuts to 63.
pub fn id_from_hostname(hostname: &str) -> NodeId {
    let mut s: String = hostname
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s
        .trim_start_matches(['-', '_'])
        .chars()
        .take(MAX_NAME_LEN)
        .collect();
    NodeId::new(s).unwrap_or_else(|_| NodeId::new("node").expect("valid literal"))
}

pub fn local_id() -> NodeId {
    let name = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    id_from_hostname(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_become_valid_ids() {
        assert_eq!(
            id_from_hostname("Pi-Gateway.local").as_str(),
            "pi-gateway-local"
        );
        assert_eq!(id_from_hostname("--x").as_str(), "x");
        assert_eq!(id_from_hostname("").as_str(), "node");
        assert_eq!(id_from_hostname("ÄÖ").as_str(), "node");
        assert_eq!(id_from_hostname(&"a".repeat(100)).as_str().len(), 63);
    }
}
