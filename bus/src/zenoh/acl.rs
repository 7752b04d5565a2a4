//! Zenoh access control from a roster of certificate names: with mutual TLS, a peer's
//! certificate common name is its node id, and zenoh drops what a peer sends outside its rights.
//! A node writes only under its own `swarm/<s>/node/<id>` (heartbeats, votes, energy, its
//! liveliness token, its replies) and the swarm-level keys any member may use (leader,
//! proposals, tasks, commands to a node); a gateway also writes its MQTT devices' keys; an
//! observer (a CLI user) only reads, queries and sends commands. A name missing from the
//! roster may connect (its certificate is valid) but everything it sends is dropped.

use super::BusError;
use crate::keys::{Leaf, ROOT};
use serde_json::{Value, json};

/// The roster's file name inside a TLS directory.
pub const ROSTER_FILE: &str = "roster";

/// What a certificate name may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Node,
    /// A node that also runs the MQTT bridge, which publishes its devices under their ids.
    Gateway,
    Observer,
    /// A zenohd router: it relays every member's messages, and itself enforces the roster on
    /// the clients behind it (`swarm-node certs acl` prints its `access_control`).
    Router,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Node => "node",
            Access::Gateway => "gateway",
            Access::Observer => "observer",
            Access::Router => "router",
        }
    }

    pub fn parse(s: &str) -> Option<Access> {
        [
            Access::Node,
            Access::Gateway,
            Access::Observer,
            Access::Router,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Names and their access, one `name access` per line; `#` starts a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster(Vec<(String, Access)>);

impl Roster {
    pub fn parse(text: &str) -> Result<Roster, BusError> {
        let mut roster = Roster::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(name), Some(access), None) = (words.next(), words.next(), words.next())
            else {
                return Err(BusError::msg(format!(
                    "roster line {}: expected `<name> node|gateway|observer|router`, got `{line}`",
                    n + 1
                )));
            };
            let access = Access::parse(access).ok_or_else(|| {
                BusError::msg(format!(
                    "roster line {}: `{access}` is not node, gateway, observer or router",
                    n + 1
                ))
            })?;
            if !valid_name(name) {
                return Err(BusError::msg(format!(
                    "roster line {}: `{name}` is not a node name",
                    n + 1
                )));
            }
            roster.set(name, access);
        }
        Ok(roster)
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Who may do what on the bus (zenoh access control), by certificate name.\n\
             # Written by `swarm-node certs issue`; copy it next to ca.pem on every node.\n",
        );
        for (name, access) in &self.0 {
            out.push_str(&format!("{name} {}\n", access.as_str()));
        }
        out
    }

    /// Adds `name`, or changes its access.
    pub fn set(&mut self, name: &str, access: Access) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = access,
            None => self.0.push((name.to_string(), access)),
        }
    }

    /// What a gateway's devices may never write: every other roster name's token and keys,
    /// but for commands (`cmd`), which any member may send.
    fn members_keys(&self, gateway: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for (name, _) in self.0.iter().filter(|(n, _)| n != gateway) {
            keys.push(format!("{ROOT}/*/node/{name}"));
            for leaf in Leaf::ALL.iter().filter(|l| **l != Leaf::Cmd) {
                keys.push(format!("{ROOT}/*/node/{name}/{}", leaf.as_str()));
                keys.push(format!("{ROOT}/*/node/{name}/{}/**", leaf.as_str()));
            }
        }
        keys
    }

    pub fn get(&self, name: &str) -> Option<Access> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// The zenoh `access_control` section enforcing this roster.
    pub fn acl(&self) -> Value {
        let writes = ["put", "delete", "reply"];
        let reads = [
            "declare_subscriber",
            "query",
            "declare_queryable",
            "liveliness_query",
            "declare_liveliness_subscriber",
        ];
        let everything: Vec<&str> = writes
            .iter()
            .chain(&reads)
            .copied()
            .chain(["liveliness_token"])
            .collect();
        let mut rules = vec![
            // What this process sends is checked by the receiver, not here.
            json!({"id": "send", "messages": everything, "flows": ["egress"],
                   "permission": "allow", "key_exprs": ["**"]}),
            // Declarations and queries carry no claim of identity.
            json!({"id": "read", "messages": reads, "flows": ["ingress"],
                   "permission": "allow", "key_exprs": ["**"]}),
            json!({"id": "swarm-keys", "messages": writes, "flows": ["ingress"],
                   "permission": "allow", "key_exprs": swarm_level_keys()}),
            // Commands, and updates for MQTT boards (`ota`), which an operator sends.
            json!({"id": "commands", "messages": ["put"], "flows": ["ingress"],
            "permission": "allow",
            "key_exprs": [
                format!("{ROOT}/*/node/*/{}", Leaf::Cmd.as_str()),
                format!("{ROOT}/*/node/*/{}", Leaf::Ota.as_str()),
            ]}),
            json!({"id": "devices", "messages": writes.iter().copied().chain(["liveliness_token"]).collect::<Vec<_>>(),
                   "flows": ["ingress"], "permission": "allow",
                   "key_exprs": [format!("{ROOT}/*/node/**")]}),
            json!({"id": "relay", "messages": everything, "flows": ["ingress"],
                   "permission": "allow", "key_exprs": ["**"]}),
        ];
        let mut subjects = vec![json!({"id": "anyone"})];
        let mut policies = vec![json!({"id": "send", "rules": ["send"], "subjects": ["anyone"]})];
        for (i, (name, access)) in self.0.iter().enumerate() {
            let subject = format!("s{i}");
            subjects.push(json!({"id": subject, "cert_common_names": [name]}));
            let mut granted = vec!["read".to_string(), "commands".into()];
            match access {
                Access::Observer => {}
                Access::Router => granted.push("relay".into()),
                Access::Node | Access::Gateway => {
                    let own = format!("own{i}");
                    rules.push(json!({
                        "id": own,
                        "messages": ["put", "delete", "reply", "liveliness_token"],
                        "flows": ["ingress"], "permission": "allow",
                        "key_exprs": [format!("{ROOT}/*/node/{name}"), format!("{ROOT}/*/node/{name}/**")],
                    }));
                    granted.push(own);
                    granted.push("swarm-keys".into());
                    if *access == Access::Gateway {
                        granted.push("devices".into());
                        // Its devices have ids of their own: never a roster name's (deny wins
                        // over allow in zenoh's ACL).
                        let members = self.members_keys(name);
                        if !members.is_empty() {
                            let rule = format!("not-members{i}");
                            rules.push(json!({
                                "id": rule,
                                "messages": ["put", "delete", "reply", "liveliness_token"],
                                "flows": ["ingress"], "permission": "deny",
                                "key_exprs": members,
                            }));
                            granted.push(rule);
                        }
                    }
                }
            }
            policies.push(json!({"id": format!("p{i}"), "rules": granted, "subjects": [subject]}));
        }
        json!({
            "enabled": true,
            "default_permission": "deny",
            "rules": rules,
            "subjects": subjects,
            "policies": policies,
        })
    }
}

/// Keys that name no node and that any member may write: the leader's own checks (term,
/// majority) decide what counts.
fn swarm_level_keys() -> Vec<String> {
    ["leader", "proposal", "energy", "task/**"]
        .iter()
        .map(|k| format!("{ROOT}/*/{k}"))
        .collect()
}

fn valid_name(name: &str) -> bool {
    crate::names::NodeId::new(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_renders_and_refuses_bad_lines() {
        let roster =
            Roster::parse("# c\nn0 node\n\ngw gateway # x\nops observer\nn0 gateway\n").unwrap();
        assert_eq!(roster.get("n0"), Some(Access::Gateway));
        assert_eq!(roster.get("ops"), Some(Access::Observer));
        assert_eq!(Roster::parse(&roster.render()).unwrap(), roster);
        assert_eq!(
            Roster::parse("r router").unwrap().get("r"),
            Some(Access::Router)
        );
        for bad in ["n0", "n0 admin", "n0 node extra", "a/b node", "* node"] {
            assert!(Roster::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_node_writes_only_its_own_subtree_an_observer_nothing_of_a_node() {
        let mut roster = Roster::default();
        roster.set("n0", Access::Node);
        roster.set("ops", Access::Observer);
        roster.set("gw", Access::Gateway);
        roster.set("router-a", Access::Router);
        let acl = roster.acl();
        let rules = acl["rules"].as_array().unwrap();
        let rule = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap().clone();
        assert_eq!(
            rule("own0")["key_exprs"],
            json!(["swarm/*/node/n0", "swarm/*/node/n0/**"])
        );
        let policy = |i: usize| acl["policies"][i + 1]["rules"].clone();
        assert_eq!(policy(0), json!(["read", "commands", "own0", "swarm-keys"]));
        assert_eq!(policy(1), json!(["read", "commands"]));
        assert_eq!(
            policy(2),
            json!([
                "read",
                "commands",
                "own2",
                "swarm-keys",
                "devices",
                "not-members2"
            ])
        );
        // The gateway's devices never write a roster member's keys or token; commands stay open.
        let denied = rule("not-members2");
        assert_eq!(denied["permission"], "deny");
        let keys: Vec<&str> = denied["key_exprs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        for k in [
            "swarm/*/node/n0",
            "swarm/*/node/n0/heartbeat",
            "swarm/*/node/n0/vote/**",
            "swarm/*/node/router-a/energy",
        ] {
            assert!(keys.contains(&k), "{k} not denied");
        }
        assert!(!keys.iter().any(|k| k.contains("/cmd")), "{keys:?}");
        assert!(
            !keys.iter().any(|k| k.contains("/gw")),
            "its own keys stay its own"
        );
        assert_eq!(
            acl["subjects"][1],
            json!({"id": "s0", "cert_common_names": ["n0"]})
        );
        assert_eq!(acl["default_permission"], "deny");
    }
}
