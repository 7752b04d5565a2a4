//! MQTT topics ⇄ zenoh key expressions, and which keys the bridge carries.
//!
//! The strings are the same; only the wildcards differ (`+` ⇄ `*`, `#` ⇄ `**`).

use zenoh::key_expr::OwnedKeyExpr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("`{0}` is not a valid key expression: {1}")]
    Invalid(String, String),
    #[error("`{0}` mixes a wildcard with other characters in one level")]
    PartialWildcard(String),
}

/// `swarm/+/node/#` → `swarm/*/node/**`.
pub fn filter_to_key_expr(filter: &str) -> Result<OwnedKeyExpr, TopicError> {
    let mapped = filter
        .split('/')
        .map(|level| match level {
            "+" | "*" => Ok("*"),
            "#" | "**" => Ok("**"),
            l if l.contains(['+', '#', '*']) => Err(TopicError::PartialWildcard(filter.into())),
            l => Ok(l),
        })
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    parse(&mapped)
}

/// `swarm/*/node/**` → `swarm/+/node/#`.
pub fn key_expr_to_filter(key_expr: &str) -> Result<String, TopicError> {
    key_expr
        .split('/')
        .map(|chunk| match chunk {
            "*" => Ok("+"),
            "**" => Ok("#"),
            c if c.contains(['+', '#', '*', '$']) => {
                Err(TopicError::PartialWildcard(key_expr.into()))
            }
            c => Ok(c),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|levels| levels.join("/"))
}

/// A concrete MQTT topic as a zenoh key; topics zenoh cannot carry (empty levels, `*`, `$`…)
/// are refused.
pub fn topic_to_key(topic: &str) -> Result<OwnedKeyExpr, TopicError> {
    if topic.contains(['+', '#', '*', '$', '?']) {
        return Err(TopicError::Invalid(
            topic.into(),
            "wildcard or reserved character".into(),
        ));
    }
    parse(topic)
}

fn parse(text: &str) -> Result<OwnedKeyExpr, TopicError> {
    OwnedKeyExpr::autocanonize(text.to_string())
        .map_err(|e| TopicError::Invalid(text.into(), e.to_string()))
}

/// `scope`, `allow` and `deny` from the config: a key is carried when the scope includes it,
/// the allow list (if any) includes it, and no deny entry intersects it.
#[derive(Debug, Clone)]
pub struct Scope {
    include: Vec<OwnedKeyExpr>,
    allow: Vec<OwnedKeyExpr>,
    deny: Vec<OwnedKeyExpr>,
}

impl Scope {
    /// Entries may be written in either syntax (`+`/`#` or `*`/`**`).
    pub fn new(include: &[String], allow: &[String], deny: &[String]) -> Result<Self, TopicError> {
        let parse_all = |items: &[String]| {
            items
                .iter()
                .map(|s| filter_to_key_expr(s))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: parse_all(include)?,
            allow: parse_all(allow)?,
            deny: parse_all(deny)?,
        })
    }

    pub fn admits(&self, key: &OwnedKeyExpr) -> bool {
        self.include.iter().any(|k| k.includes(key))
            && (self.allow.is_empty() || self.allow.iter().any(|k| k.includes(key)))
            && !self.deny.iter().any(|k| k.intersects(key))
    }

    /// The MQTT filters to subscribe to for the uplink.
    pub fn mqtt_filters(&self) -> Vec<String> {
        self.include
            .iter()
            .filter_map(|k| key_expr_to_filter(k.as_str()).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_map_both_ways() {
        assert_eq!(
            filter_to_key_expr("swarm/+/node/#").unwrap().as_str(),
            "swarm/*/node/**"
        );
        assert_eq!(
            filter_to_key_expr("swarm/*/node/**").unwrap().as_str(),
            "swarm/*/node/**"
        );
        assert_eq!(
            key_expr_to_filter("swarm/*/node/**").unwrap(),
            "swarm/+/node/#"
        );
        assert_eq!(
            key_expr_to_filter("swarm/lab/node/esp-1/cmd").unwrap(),
            "swarm/lab/node/esp-1/cmd"
        );
    }

    #[test]
    fn partial_wildcards_and_odd_topics_are_refused() {
        assert!(matches!(
            filter_to_key_expr("swarm/a+/x"),
            Err(TopicError::PartialWildcard(_))
        ));
        assert!(topic_to_key("swarm//x").is_err());
        assert!(topic_to_key("swarm/$SYS/x").is_err());
        assert!(topic_to_key("swarm/a/*").is_err());
        assert!(topic_to_key("").is_err());
        assert_eq!(
            topic_to_key("swarm/lab/node/a/energy").unwrap().as_str(),
            "swarm/lab/node/a/energy"
        );
    }

    #[test]
    fn scope_allow_and_deny_combine() {
        let scope = Scope::new(
            &["swarm/lab/node/#".into()],
            &[
                "swarm/lab/node/+/energy".into(),
                "swarm/lab/node/+/status".into(),
            ],
            &["swarm/lab/node/bad/**".into()],
        )
        .unwrap();
        let key = |s: &str| topic_to_key(s).unwrap();
        assert!(scope.admits(&key("swarm/lab/node/a/energy")));
        assert!(!scope.admits(&key("swarm/lab/node/a/heartbeat")));
        assert!(!scope.admits(&key("swarm/lab/node/bad/energy")));
        assert!(!scope.admits(&key("swarm/other/node/a/energy")));
        assert_eq!(scope.mqtt_filters(), vec!["swarm/lab/node/#".to_string()]);
    }
}
