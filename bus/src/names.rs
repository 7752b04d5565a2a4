//! Swarm names and node ids: `[a-z0-9][a-z0-9_-]{0,62}`.
//!
//! They become key-expression chunks and MQTT topic levels, so anything that could be read as
//! a wildcard, a separator or a selector (`*`, `/`, `?`, `#`, `$`) must never get in.

use alloc::string::String;
use core::fmt;

pub const MAX_NAME_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} is empty; use 1 to 63 characters from a-z, 0-9, '_' and '-'")]
    Empty { kind: &'static str },
    #[error("{kind} `{value}` is {len} characters long; at most 63 are allowed")]
    TooLong {
        kind: &'static str,
        value: String,
        len: usize,
    },
    #[error(
        "{kind} `{value}` has {found:?} at position {position}; allowed are a-z, 0-9, '_' and '-', and the first character must be a-z or 0-9"
    )]
    BadChar {
        kind: &'static str,
        value: String,
        found: char,
        position: usize,
    },
}

fn validate(kind: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let len = value.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            value: value.into(),
            len,
        });
    }
    for (position, c) in value.chars().enumerate() {
        let ok = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || (position > 0 && (c == '_' || c == '-'));
        if !ok {
            return Err(NameError::BadChar {
                kind,
                value: value.into(),
                found: c,
                position,
            });
        }
    }
    Ok(())
}

macro_rules! validated_name {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                validate($kind, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl core::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_name!(
    /// A node's id, unique within its swarm; also the last chunk of its liveliness token.
    NodeId,
    "node id"
);
validated_name!(
    /// A swarm's name: the second chunk of every key (`swarm/<name>/...`).
    SwarmName,
    "swarm name"
);
validated_name!(
    /// A task's id (`swarm/<s>/task/<id>/...`).
    TaskId,
    "task id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "0", "pi-gw-01", "esp32_c3", &"x".repeat(63)] {
            NodeId::new(ok).unwrap();
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(matches!(NodeId::new(""), Err(NameError::Empty { .. })));
        assert!(matches!(
            NodeId::new("x".repeat(64)),
            Err(NameError::TooLong { len: 64, .. })
        ));
        let err = NodeId::new("Pi4").unwrap_err();
        assert!(matches!(
            err,
            NameError::BadChar {
                found: 'P',
                position: 0,
                ..
            }
        ));
        assert!(err.to_string().contains("`Pi4`"));
        for bad in ["-a", "_a", "a/b", "a*", "a?b", "a#", "a.b", "a b", "é"] {
            assert!(SwarmName::new(bad).is_err(), "{bad} accepted");
        }
    }
}
