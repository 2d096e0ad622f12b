//! The listener's limits: `Config`'s connection settings fitted to the open-file limit, and
//! raising that limit at start.

use std::time::Duration;

use crate::cfg::Config;

use super::FD_RESERVE;

/// What the listener enforces: `Config`'s connection settings, fitted to the open-file limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most: `max_connections`, or less if the open-file limit says so.
    pub max_connections: usize,
    /// Open connections per client address at most; 0: no per-address limit.
    pub max_connections_per_ip: usize,
    /// From a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress lives this long.
    pub idle_timeout: Duration,
}

impl Limits {
    /// The configured limits, with `max_connections` lowered to what `open_files` (the soft
    /// open-file limit, if known) leaves after the reserve.
    pub fn new(config: &Config, open_files: Option<u64>) -> Limits {
        let mut max_connections = config.max_connections;
        if let Some(files) = open_files {
            let files = usize::try_from(files).unwrap_or(usize::MAX);
            let room = files.saturating_sub(FD_RESERVE + config.push_concurrency).max(16);
            if room < max_connections {
                tracing::warn!(
                    max_connections,
                    open_file_limit = files,
                    serving_at_most = room,
                    "the open-file limit leaves room for fewer connections than max_connections; raise it (ulimit -n, LimitNOFILE=) to serve more"
                );
                max_connections = room;
            }
        }
        Limits {
            max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
        }
    }
}

/// Raises the soft open-file limit to the hard one, so that the node's connection limit, not
/// a distribution's default of 1024 descriptors, decides how many clients it serves. Returns
/// the soft limit in force afterwards (`None` where it cannot be read).
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into the struct it is given, which lives on this frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let before = limit.rlim_cur;
    // An unlimited hard limit is refused by Linux above `fs.nr_open` (default 2^20).
    for target in [limit.rlim_max, limit.rlim_max.min(1 << 20)] {
        if limit.rlim_cur >= target {
            break;
        }
        let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct it is given; it changes a process attribute only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    // `rlim_t` is u64 on Linux but not on every Unix.
    #[allow(clippy::useless_conversion)]
    let now = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
    if limit.rlim_cur > before {
        tracing::info!(open_file_limit = now, raised_from = before, "raised the open-file limit");
    } else {
        tracing::debug!(open_file_limit = now, "open-file limit");
    }
    Some(now)
}

/// Where there is no `RLIMIT_NOFILE`, the limit is left alone and unknown.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}
