//! Where a push may go: the SSRF guard applied at registration ([`check_endpoint`]), before
//! each attempt for literal addresses ([`check_literal`]) and at connect time for names
//! ([`GuardedResolver`], so DNS rebinding cannot reach the inside). The rule itself is
//! [`guard`](super::guard).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::guard;

/// A host name none of whose addresses push may reach.
#[derive(Debug)]
pub(super) struct RefusedAddress {
    host: String,
    first: guard::Refused,
}

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` resolves only to addresses push may not reach: {}", self.host, self.first)
    }
}

impl std::error::Error for RefusedAddress {}

/// Resolves endpoint host names and drops the addresses [`guard::check`] refuses, at connect
/// time, so a name that changes its answer after registration (DNS rebinding) still cannot
/// reach the inside. Literal addresses never come here: [`check_literal`] covers them.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let mut first = None;
            let mut ok = Vec::with_capacity(addrs.len());
            for a in addrs {
                match guard::check(a.ip()) {
                    Ok(()) => ok.push(a),
                    Err(refused) => first = first.or(Some(refused)),
                }
            }
            match first {
                Some(first) if ok.is_empty() => {
                    Err(Box::new(RefusedAddress { host, first }) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// What to tell an admin whose endpoint the guard refused.
const ALLOW_HINT: &str = "push may reach it only when the node allows private endpoints \
     (SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true) or the tenant does (`allow_private_endpoints` in \
     PUT /v1/tenant/push-settings)";

/// Checks an endpoint URL when an agent is registered or updated: scheme, and (unless
/// allowed) that every address it names or resolves to passes [`guard::check`]. Returns what
/// is wrong.
pub async fn check_endpoint(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if allow_private {
        return Ok(());
    }
    let host = parsed.host_str().ok_or("has no host")?;
    if let Some(ip) = guard::literal(&parsed) {
        return guard::check(ip).map_err(|r| format!("{r}; {ALLOW_HINT}"));
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Err(format!("host `{host}` does not resolve: {e}")),
    };
    // Any refused address refuses the name: the resolver would drop it at connect time, but
    // an admin should hear now that part of the endpoint is out of bounds.
    match addrs.iter().find_map(|a| guard::check(a.ip()).err()) {
        Some(r) => Err(format!("`{host}` resolves to an address push may not reach: {r}; {ALLOW_HINT}")),
        None => Ok(()),
    }
}

pub(super) fn http_client(config: &crate::cfg::Config, allow_private: bool) -> reqwest::Client {
    guarded_client(
        Duration::from_millis(config.push_timeout_ms),
        allow_private,
        concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")),
    )
}

/// An HTTP client that follows no redirect and whose resolver drops the addresses
/// [`guard::check`] refuses (unless `allow_private`): for every request the hub makes to a
/// URL someone gave it (webhooks, identity providers' key sets). Literal addresses are the
/// caller's to check, with [`check_literal`].
pub(crate) fn guarded_client(timeout: Duration, allow_private: bool, user_agent: &'static str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent(user_agent)
        .build()
        .unwrap_or_default()
}

/// Refuses an endpoint that names an address [`guard::check`] refuses: the client connects
/// to a literal address without asking the resolver, so the resolver cannot catch it.
pub(crate) fn check_literal(endpoint: &str) -> std::result::Result<(), String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| e.to_string())?;
    match guard::literal(&url).map(guard::check) {
        Some(Err(refused)) => Err(format!("{refused}; push may not reach it")),
        _ => Ok(()),
    }
}
