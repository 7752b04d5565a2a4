//! Device logins: a file of `username:argon2-hash` lines, never plain passwords.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading users file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("users file {path}, line {line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Usernames and their password hashes. A device's username is its node id.
#[derive(Debug, Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
}

impl Users {
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| AuthError::Line {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut hashes = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or((n + 1, "expected `username:hash`".to_string()))?;
            PasswordHash::new(hash).map_err(|e| {
                (
                    n + 1,
                    format!("`{user}` has no valid password hash ({e}); make one with `swarm-bridge passwd`"),
                )
            })?;
            hashes.insert(user.to_string(), hash.to_string());
        }
        Ok(Self { hashes })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Slow on purpose (argon2): call it off the async threads.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.hashes.get(user) else {
            return false;
        };
        PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    }
}

/// An argon2id hash in PHC form, for the users file.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Adds or replaces `user` in the users file text, keeping every other line.
pub fn set_user(text: &str, user: &str, hash: &str) -> String {
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| l.split_once(':').map(|(u, _)| u.trim()) != Some(user))
        .map(str::to_string)
        .collect();
    out.push(format!("{user}:{hash}"));
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_passes_and_others_do_not() {
        let hash = hash_password("s3cret").unwrap();
        assert!(!hash.contains("s3cret"));
        let users = Users::parse(&set_user("# devices\n", "esp-1", &hash)).unwrap();
        assert!(users.verify("esp-1", "s3cret"));
        assert!(!users.verify("esp-1", "s3cret "));
        assert!(!users.verify("esp-2", "s3cret"));
    }

    #[test]
    fn plain_text_passwords_are_refused_with_the_line() {
        let err = Users::parse("esp-1:hunter2\n").unwrap_err();
        assert_eq!(err.0, 1);
        assert!(err.1.contains("swarm-bridge passwd"), "{}", err.1);
        assert!(Users::parse("no colon here").is_err());
    }

    #[test]
    fn set_user_replaces_an_existing_line() {
        let text = set_user("a:x\nb:y\n", "a", "z");
        assert_eq!(text, "b:y\na:z\n");
    }
}
