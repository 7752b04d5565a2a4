//! `swarm-node certs`: a swarm's own certificate authority, and a certificate per node signed
//! by it, as PEM files in one directory. With `--tls-dir` a node presents its certificate and
//! accepts only peers whose certificate the CA signed (zenoh mutual TLS); its common name is
//! the node id.

use crate::atomic_file;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use swarm_bus::NodeId;
use swarm_bus::zenoh::{Access, CA_CERT_FILE, ROSTER_FILE, Roster, cert_file, key_file};

/// The CA's private key. It signs node certificates and never leaves the machine that issues
/// them: nodes need only `ca.pem` and their own pair.
pub const CA_KEY_FILE: &str = "ca.key";

/// How long certificates are valid, in years from today.
const CA_YEARS: i32 = 20;
const NODE_YEARS: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0} already exists (pass --force to replace it)")]
    Exists(PathBuf),
    #[error("no CA in {dir}: run `swarm-node certs init --dir {dir}` first", dir = .0.display())]
    NoCa(PathBuf),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Crypto(&'static str, rcgen::Error),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Roster(PathBuf, swarm_bus::zenoh::BusError),
}

/// Creates `ca.pem`, `ca.key` and an empty roster in `dir`; returns the files written.
pub fn init(dir: &Path, force: bool) -> Result<Vec<PathBuf>, CertError> {
    let (cert, key, roster) = (
        dir.join(CA_CERT_FILE),
        dir.join(CA_KEY_FILE),
        dir.join(ROSTER_FILE),
    );
    refuse_existing(&[&cert, &key], force)?;
    let key_pair =
        KeyPair::generate().map_err(|e| CertError::Crypto("generating the CA key", e))?;
    let ca = ca_params()
        .self_signed(&key_pair)
        .map_err(|e| CertError::Crypto("signing the CA certificate", e))?;
    create_dir(dir)?;
    write_secret(&key, &key_pair.serialize_pem())?;
    write_public(&cert, &ca.pem())?;
    // A new CA invalidates every certificate the old one signed, and so every name.
    write_public(&roster, &Roster::default().render())?;
    Ok(vec![cert, key, roster])
}

/// Creates `<name>.pem` and `<name>.key` in `dir`, signed by the CA there, and grants the name
/// `access` in the roster.
pub fn issue(
    dir: &Path,
    name: &NodeId,
    access: Access,
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    let ca_key_path = dir.join(CA_KEY_FILE);
    if !ca_key_path.is_file() || !dir.join(CA_CERT_FILE).is_file() {
        return Err(CertError::NoCa(dir.to_path_buf()));
    }
    let (cert, key) = (
        dir.join(cert_file(name.as_str())),
        dir.join(key_file(name.as_str())),
    );
    refuse_existing(&[&cert, &key], force)?;
    let ca_pem =
        std::fs::read_to_string(&ca_key_path).map_err(|e| CertError::Io(ca_key_path.clone(), e))?;
    let ca_key = KeyPair::from_pem(&ca_pem).map_err(|e| CertError::Crypto("reading ca.key", e))?;
    // The issuer is the CA's name and key; its name is fixed, so it need not be parsed back.
    let issuer = Issuer::new(ca_params(), ca_key);
    let key_pair =
        KeyPair::generate().map_err(|e| CertError::Crypto("generating the node key", e))?;
    let signed = node_params(name)?
        .signed_by(&key_pair, &issuer)
        .map_err(|e| CertError::Crypto("signing the node certificate", e))?;
    write_secret(&key, &key_pair.serialize_pem())?;
    write_public(&cert, &signed.pem())?;
    let roster_path = dir.join(ROSTER_FILE);
    let mut roster = match std::fs::read_to_string(&roster_path) {
        Ok(text) => Roster::parse(&text).map_err(|e| CertError::Roster(roster_path.clone(), e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Roster::default(),
        Err(e) => return Err(CertError::Io(roster_path, e)),
    };
    roster.set(name.as_str(), access);
    write_public(&roster_path, &roster.render())?;
    Ok(vec![cert, key, roster_path])
}

/// `{"access_control": …}` for `dir/roster`, pretty-printed: a zenohd config fragment.
pub fn acl_json(dir: &Path) -> Result<String, CertError> {
    let path = dir.join(ROSTER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| CertError::Io(path.clone(), e))?;
    let roster = Roster::parse(&text).map_err(|e| CertError::Roster(path, e))?;
    let fragment = serde_json::json!({ "access_control": roster.acl() });
    Ok(serde_json::to_string_pretty(&fragment).unwrap_or_default())
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "swarm-mesh CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(this_year() + CA_YEARS, 1, 1);
    params
}

fn node_params(name: &NodeId) -> Result<CertificateParams, CertError> {
    let dns = name
        .as_str()
        .to_string()
        .try_into()
        .map_err(|e| CertError::Crypto("the node id as a DNS name", e))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // zenoh's access control matches peers by this name.
    dn.push(DnType::CommonName, name.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::DnsName(dns)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Every node both listens and dials.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(this_year() - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(this_year() + NODE_YEARS, 1, 1);
    Ok(params)
}

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

fn refuse_existing(paths: &[&PathBuf], force: bool) -> Result<(), CertError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) if !force => Err(CertError::Exists(p.to_path_buf())),
        _ => Ok(()),
    }
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|e| CertError::Io(dir.to_path_buf(), e))
}

/// Readable by the owner only, from the moment it exists, even where an older file was not.
fn write_secret(path: &Path, pem: &str) -> Result<(), CertError> {
    write_with_mode(path, pem, atomic_file::SECRET)
}

/// Certificates and the roster: a new file is readable by all; a replaced one keeps its mode.
fn write_public(path: &Path, pem: &str) -> Result<(), CertError> {
    write_with_mode(path, pem, atomic_file::STATE)
}

/// Replaced whole, never removed first: a crash leaves the old file or the new one.
fn write_with_mode(path: &Path, text: &str, mode: atomic_file::Mode) -> Result<(), CertError> {
    atomic_file::write_with(path, text.as_bytes(), mode)
        .map_err(|e| CertError::Io(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn writes_a_ca_and_node_pairs_with_private_keys_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let written = init(dir.path(), false).unwrap();
        assert_eq!(written.len(), 3);
        issue(dir.path(), &id("pi-a"), Access::Node, false).unwrap();
        issue(dir.path(), &id("ops"), Access::Observer, false).unwrap();
        let roster = std::fs::read_to_string(dir.path().join("roster")).unwrap();
        let roster = Roster::parse(&roster).unwrap();
        assert_eq!(roster.get("pi-a"), Some(Access::Node));
        assert_eq!(roster.get("ops"), Some(Access::Observer));
        for (file, mode) in [
            ("ca.pem", 0o644),
            ("ca.key", 0o600),
            ("pi-a.pem", 0o644),
            ("pi-a.key", 0o600),
        ] {
            let meta = std::fs::metadata(dir.path().join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
        }
        let cert = std::fs::read_to_string(dir.path().join("pi-a.pem")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(dir.path().join("pi-a.key")).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn the_roster_is_replaced_in_place_keeping_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), false).unwrap();
        let roster = dir.path().join("roster");
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(&roster, private.clone()).unwrap();
        std::fs::set_permissions(dir.path().join("ca.key"), private).unwrap();
        issue(dir.path(), &id("pi-a"), Access::Node, false).unwrap();
        issue(dir.path(), &id("pi-a"), Access::Gateway, true).unwrap();
        let meta = std::fs::metadata(&roster).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&roster).unwrap();
        assert_eq!(
            Roster::parse(&text).unwrap().get("pi-a"),
            Some(Access::Gateway)
        );
        let key = std::fs::metadata(dir.path().join("pi-a.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["ca.key", "ca.pem", "pi-a.key", "pi-a.pem", "roster"]
        );
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_to_issue_without_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            issue(dir.path(), &id("n0"), Access::Node, false),
            Err(CertError::NoCa(_))
        ));
        init(dir.path(), false).unwrap();
        let first = std::fs::read(dir.path().join("ca.key")).unwrap();
        assert!(matches!(init(dir.path(), false), Err(CertError::Exists(_))));
        assert_eq!(std::fs::read(dir.path().join("ca.key")).unwrap(), first);
        issue(dir.path(), &id("n0"), Access::Node, false).unwrap();
        assert!(matches!(
            issue(dir.path(), &id("n0"), Access::Node, false),
            Err(CertError::Exists(_))
        ));
        issue(dir.path(), &id("n0"), Access::Node, true).unwrap();
        init(dir.path(), true).unwrap();
        assert_ne!(std::fs::read(dir.path().join("ca.key")).unwrap(), first);
    }
}
