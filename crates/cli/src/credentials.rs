//! Saved sign-ins: the personal access token `switchboard login` made, per hub URL, in
//! `$XDG_CONFIG_HOME/switchboard/credentials` (else `~/.config/switchboard/credentials`),
//! mode 0600. A token is used only for the hub it was made by, so a `--url` to another hub
//! never sends it there.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub token: String,
    /// The token's id, to revoke it by.
    pub token_id: String,
    pub email: String,
    pub tenant: String,
}

/// The file's content: hub URL to its sign-in.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub hubs: BTreeMap<String, Saved>,
}

/// Where the file is; `None` without `XDG_CONFIG_HOME` or `HOME`.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("switchboard").join("credentials"))
}

fn key(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// The saved token for the hub at `url`, if there is one (an unreadable file counts as none).
pub fn token_for(url: &str) -> Option<String> {
    let text = std::fs::read_to_string(path()?).ok()?;
    let creds: Credentials = serde_json::from_str(&text).ok()?;
    creds.hubs.get(&key(url)).map(|s| s.token.clone())
}

/// Saves the sign-in for the hub at `url`, keeping the others; the file is written whole
/// (mode 0600, its directory 0700) and renamed into place. Returns its path.
pub fn save(url: &str, saved: Saved) -> Result<PathBuf> {
    let path = path().context("cannot tell where to save the token: set HOME or XDG_CONFIG_HOME")?;
    let mut creds: Credentials =
        std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    creds.hubs.insert(key(url), saved);
    write_private(&path, serde_json::to_string_pretty(&creds)?.as_bytes())?;
    Ok(path)
}

/// Writes a file only its owner may read: mode 0600 in a 0700 directory (made if missing),
/// written whole to a temporary file, synced and renamed into place, so a crash leaves the
/// old file or the new one. For the credentials file and private keys (`private_keys.rs`).
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("the path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
