//! Mutual TLS between zenoh sessions: the files `swarm-node certs` writes, and the zenoh
//! settings that make every link present and check a certificate of the swarm's CA.
//!
//! Links are `tls/` (TCP) or `quic/` (UDP). `tls/` is the default: a crashed peer's TCP
//! connection is reset by its kernel at once, so its liveliness token goes within milliseconds,
//! where a QUIC peer notices only by silence. zenoh-link-tls is patched (`vendor/`) for a crash
//! in 1.10.2, eclipse-zenoh/zenoh#2557.

use super::BusError;
use super::acl::{ROSTER_FILE, Roster};
use std::path::{Path, PathBuf};

/// The CA certificate every process trusts, and this process's own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Who may write what ([`super::Roster`]); without one, any certificate holder may write
    /// any key.
    pub roster: Option<PathBuf>,
}

/// File names inside a TLS directory, shared with the code that writes them.
pub const CA_CERT_FILE: &str = "ca.pem";
pub fn cert_file(name: &str) -> String {
    format!("{name}.pem")
}
pub fn key_file(name: &str) -> String {
    format!("{name}.key")
}

impl TlsFiles {
    /// `dir/ca.pem`, `dir/<name>.pem` and `dir/<name>.key`, each checked to exist so a missing
    /// file is named here rather than surfacing as zenoh's generic link error.
    pub fn in_dir(dir: &Path, name: &str) -> Result<Self, BusError> {
        let files = Self {
            ca: dir.join(CA_CERT_FILE),
            cert: dir.join(cert_file(name)),
            key: dir.join(key_file(name)),
            roster: Some(dir.join(ROSTER_FILE)).filter(|p| p.is_file()),
        };
        for path in [&files.ca, &files.cert, &files.key] {
            if !path.is_file() {
                return Err(BusError::msg(format!(
                    "TLS file {} is missing (create it with `swarm-node certs`)",
                    path.display()
                )));
            }
        }
        Ok(files)
    }

    /// Turns mutual TLS on in `config`. Endpoints must all be `tls/` or `quic/`: a `tcp/`
    /// listener next to TLS would let anyone without a certificate in.
    pub(crate) fn apply(
        &self,
        config: &mut zenoh::Config,
        listen: &[String],
        connect: &[String],
    ) -> Result<(), BusError> {
        if let Some(other) = listen
            .iter()
            .chain(connect)
            .find(|e| !e.starts_with("tls/") && !e.starts_with("quic/"))
        {
            return Err(BusError::msg(format!(
                "endpoint {other} is not TLS: with tls_dir set, every endpoint is \
                 tls/<host>:<port> (or quic/<host>:<port>)"
            )));
        }
        let path = |p: &PathBuf| serde_json::to_string(&p.to_string_lossy()).unwrap_or_default();
        let settings = [
            ("transport/link/tls/root_ca_certificate", path(&self.ca)),
            ("transport/link/tls/listen_certificate", path(&self.cert)),
            ("transport/link/tls/listen_private_key", path(&self.key)),
            ("transport/link/tls/connect_certificate", path(&self.cert)),
            ("transport/link/tls/connect_private_key", path(&self.key)),
            ("transport/link/tls/enable_mtls", "true".into()),
            // Peers dial each other by address, which no node certificate names; the chain to
            // the swarm's CA is what proves a peer, and its common name is its node id.
            ("transport/link/tls/verify_name_on_connect", "false".into()),
            ("transport/link/tls/close_link_on_expiration", "true".into()),
        ];
        for (key, value) in settings {
            config
                .insert_json5(key, &value)
                .map_err(|e| BusError::new(format!("zenoh setting {key}"), e))?;
        }
        match &self.roster {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| BusError::new(format!("reading {}", path.display()), e))?;
                let acl = Roster::parse(&text)
                    .map_err(|e| BusError::msg(format!("{}: {}", path.display(), e.message)))?
                    .acl();
                config
                    .insert_json5("access_control", &acl.to_string())
                    .map_err(|e| BusError::new("zenoh setting access_control", e))?;
            }
            None => tracing::warn!(
                dir = %self.ca.parent().map(|d| d.display().to_string()).unwrap_or_default(),
                "TLS without a roster: any holder of a certificate from this CA may write any key"
            ),
        }
        if listen.is_empty() {
            // zenoh's own default listener is plain TCP.
            config
                .insert_json5(
                    "listen/endpoints",
                    r#"{ peer: ["tls/[::]:0"], router: ["tls/[::]:7447"] }"#,
                )
                .map_err(|e| BusError::new("zenoh setting listen/endpoints", e))?;
        }
        Ok(())
    }
}
