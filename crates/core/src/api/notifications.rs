//! A person's e-mail notification preferences (`GET|PUT /v1/users/me/notifications`), and
//! the pure rule of quiet hours.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;
use crate::time::Millis;

/// How a person hears of new requests by e-mail. With none stored, e-mail is on and there are
/// no quiet hours (the hub sends e-mail only when its operator configured SMTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPrefs {
    /// E-mail me a new request addressed to me (or to a group of mine).
    pub email: bool,
    /// A daily window in which no e-mail is sent; what arrives in it is sent as one digest
    /// when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
}

impl Default for NotificationPrefs {
    fn default() -> NotificationPrefs {
        NotificationPrefs { email: true, quiet_hours: None }
    }
}

/// A daily window, in the person's local time (`utc_offset_minutes` east of UTC). `start`
/// after `end` spans midnight (`22:00` to `07:00`); `start` equal to `end` is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, 24-hour clock.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "22:00")]
    pub start: String,
    /// `HH:MM`, 24-hour clock.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "07:00")]
    pub end: String,
    /// The person's offset from UTC in minutes, -720 to 840 (e.g. 60 for CET, -300 for EST).
    #[serde(default)]
    #[schema(minimum = -720, maximum = 840)]
    pub utc_offset_minutes: i32,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Minutes after midnight of `HH:MM`.
fn minutes(hhmm: &str) -> Option<i64> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl QuietHours {
    /// When the quiet window that `now` falls in ends (Unix ms), or `None` outside it.
    pub fn quiet_until(&self, now: Millis) -> Option<Millis> {
        let (start, end) = (minutes(&self.start)? * 60_000, minutes(&self.end)? * 60_000);
        let local = now + i64::from(self.utc_offset_minutes) * 60_000;
        let day = local.rem_euclid(DAY_MS);
        let midnight = local - day;
        let end_local = if start < end {
            (start <= day && day < end).then_some(midnight + end)?
        } else if day >= start {
            midnight + DAY_MS + end
        } else if day < end {
            midnight + end
        } else {
            return None;
        };
        Some(end_local - i64::from(self.utc_offset_minutes) * 60_000)
    }
}

/// Checks `PUT /v1/users/me/notifications`, naming every bad field.
pub fn check_notification_prefs(p: &NotificationPrefs) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(q) = &p.quiet_hours {
        for (path, v) in [("quiet_hours.start", &q.start), ("quiet_hours.end", &q.end)] {
            if minutes(v).is_none() {
                errors.push(FieldError { path: path.into(), message: format!("`{v}` is not a time such as 22:00") });
            }
        }
        if q.start == q.end {
            errors.push(FieldError {
                path: "quiet_hours.end".into(),
                message: "equals start; leave quiet_hours out for none".into(),
            });
        }
        if !(-720..=840).contains(&q.utc_offset_minutes) {
            errors.push(FieldError {
                path: "quiet_hours.utc_offset_minutes".into(),
                message: format!("{} is not an offset from UTC; use -720 to 840", q.utc_offset_minutes),
            });
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;

    fn q(start: &str, end: &str, off: i32) -> QuietHours {
        QuietHours { start: start.into(), end: end.into(), utc_offset_minutes: off }
    }

    #[test]
    fn a_window_over_midnight_ends_the_next_morning() {
        let night = q("22:00", "07:00", 0);
        let day0 = 20_000 * 24 * H; // a midnight, UTC
        assert_eq!(night.quiet_until(day0 + 23 * H), Some(day0 + 31 * H));
        assert_eq!(night.quiet_until(day0 + 6 * H), Some(day0 + 7 * H));
        assert_eq!(night.quiet_until(day0 + 7 * H), None);
        assert_eq!(night.quiet_until(day0 + 12 * H), None);
        assert_eq!(night.quiet_until(day0 + 22 * H), Some(day0 + 31 * H));
    }

    #[test]
    fn a_window_within_a_day_and_the_offset() {
        let lunch = q("12:00", "13:00", 120); // 10:00 to 11:00 UTC
        let day0 = 20_000 * 24 * H;
        assert_eq!(lunch.quiet_until(day0 + 10 * H + 1), Some(day0 + 11 * H));
        assert_eq!(lunch.quiet_until(day0 + 12 * H), None);
    }

    #[test]
    fn bad_prefs_are_named() {
        let p = NotificationPrefs { email: true, quiet_hours: Some(q("25:00", "25:00", 900)) };
        let paths: Vec<String> = check_notification_prefs(&p).unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            ["quiet_hours.start", "quiet_hours.end", "quiet_hours.end", "quiet_hours.utc_offset_minutes"]
        );
        assert!(check_notification_prefs(&NotificationPrefs::default()).is_ok());
    }
}
