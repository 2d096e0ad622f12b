//! The caller's private keys for end-to-end trust (`switchboard keys init`): one file per
//! principal, `$XDG_CONFIG_HOME/switchboard/keys/<kind>-<id>.json` (else under
//! `~/.config`), mode 0600 in a 0700 directory. Never sent anywhere: the hub gets the public
//! halves only.

use std::path::PathBuf;

use anyhow::{Context, Result};
use switchboard_client::e2e::KeyPairs;

/// Where `principal`'s keys are kept (`agent:<id>` → `keys/agent-<id>.json`).
pub fn path(principal: &str) -> Result<PathBuf> {
    let creds = crate::credentials::path().context("cannot tell where keys live: set HOME or XDG_CONFIG_HOME")?;
    let dir = creds.parent().context("the config path has no directory")?.join("keys");
    let name: String =
        principal.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    Ok(dir.join(format!("{name}.json")))
}

/// `principal`'s keys, if `keys init` made them here.
pub fn load(principal: &str) -> Result<Option<KeyPairs>> {
    let path = path(principal)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Ok(Some(serde_json::from_str(&text).with_context(|| format!("{} is not a key file", path.display()))?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Saves `keys` (mode 0600, written whole and renamed into place); returns the path.
pub fn save(keys: &KeyPairs) -> Result<PathBuf> {
    let path = path(&keys.principal)?;
    crate::credentials::write_private(&path, serde_json::to_string_pretty(keys)?.as_bytes())?;
    Ok(path)
}
