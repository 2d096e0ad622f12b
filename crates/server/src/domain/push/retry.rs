//! When a failed push is tried again: the retry schedule with full jitter, and the endpoint's
//! own `Retry-After`. Pure functions (the randomness and the clock are arguments), so tests
//! pin the schedule and its bounds without waiting.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Longest `Retry-After` honoured: an endpoint cannot park a delivery for longer.
pub const MAX_RETRY_AFTER_MS: i64 = 3_600_000;

/// Milliseconds to wait before the next attempt after `attempts` failed ones, or `None` when
/// the schedule is spent and the delivery goes dead. A `Retry-After` from the endpoint
/// replaces the schedule's step (not the number of steps).
pub fn next_delay_ms(schedule: &[u64], attempts: u32, retry_after_ms: Option<i64>, rng: &mut impl Rng) -> Option<i64> {
    let step = *schedule.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    Some(retry_after_ms.unwrap_or_else(|| jittered(step, rng)))
}

/// Full jitter: a uniform delay in (0, step], so that endpoints recovering from an outage are
/// not hit by every retry at once.
pub fn jittered(step_ms: u64, rng: &mut impl Rng) -> i64 {
    if step_ms == 0 {
        return 0;
    }
    i64::try_from(rng.random_range(1..=step_ms)).unwrap_or(i64::MAX)
}

/// A `Retry-After` header value (RFC 9110 §10.2.3) as milliseconds from `now`, capped at
/// [`MAX_RETRY_AFTER_MS`]: either delay-seconds or an HTTP date (IMF-fixdate, and the
/// obsolete RFC 850 and asctime forms). `None` when it is neither.
pub fn retry_after_ms(value: &str, now: SystemTime) -> Option<i64> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to parse is still a number of seconds: longer than the cap.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        // A date in the past means now.
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX).min(MAX_RETRY_AFTER_MS))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// The README's default: 5 s, 30 s, 2 m, 10 m, 30 m, 1 h, 3 h, 6 h.
    const DOCUMENTED: [u64; 8] = [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000];

    #[test]
    fn the_default_schedule_is_the_documented_one() {
        assert_eq!(crate::cfg::Config::default().push_retry_schedule_ms, DOCUMENTED);
    }

    #[test]
    fn each_retry_waits_within_its_step_and_the_ninth_failure_is_final() {
        let schedule = crate::cfg::Config::default().push_retry_schedule_ms;
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            for (i, step) in DOCUMENTED.iter().enumerate() {
                let failed = i as u32 + 1;
                let wait = next_delay_ms(&schedule, failed, None, &mut rng).expect("a retry is due");
                assert!((0..=*step as i64).contains(&wait), "after failure {failed}: {wait} ms outside [0, {step}]");
            }
            assert_eq!(next_delay_ms(&schedule, 9, None, &mut rng), None, "the ninth failure goes dead");
        }
    }

    #[test]
    fn full_jitter_spreads_retries_over_the_whole_step() {
        let mut rng = StdRng::seed_from_u64(7);
        let waits: Vec<i64> = (0..1000).map(|_| jittered(5_000, &mut rng)).collect();
        let (min, max) = (*waits.iter().min().unwrap(), *waits.iter().max().unwrap());
        assert!(min < 500 && max > 4_500, "full jitter covers (0, 5000]: saw {min}..{max}");
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 800, "{} distinct waits of 1000", distinct.len());
        let mean = waits.iter().sum::<i64>() as f64 / waits.len() as f64;
        assert!((2_200.0..2_800.0).contains(&mean), "uniform over the step: mean {mean}");
        assert_eq!(jittered(0, &mut rng), 0);
    }

    #[test]
    fn retry_after_replaces_the_step_but_not_the_count() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(next_delay_ms(&[50, 50], 1, Some(2_000), &mut rng), Some(2_000));
        assert_eq!(next_delay_ms(&[50, 50], 3, Some(2_000), &mut rng), None);
        assert_eq!(next_delay_ms(&[], 1, None, &mut rng), None);
        assert_eq!(next_delay_ms(&[50], 0, None, &mut rng), None, "no attempt failed: nothing to retry");
    }

    #[test]
    fn retry_after_in_seconds_is_capped_at_one_hour() {
        let now = SystemTime::now();
        assert_eq!(retry_after_ms("0", now), Some(0));
        assert_eq!(retry_after_ms(" 120 ", now), Some(120_000));
        assert_eq!(retry_after_ms("3600", now), Some(3_600_000));
        assert_eq!(retry_after_ms("3601", now), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(retry_after_ms("7200", now), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(retry_after_ms("99999999999999999999999", now), Some(MAX_RETRY_AFTER_MS));
        for bad in ["", "-5", "1.5", "soon", "5s"] {
            assert_eq!(retry_after_ms(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_as_an_http_date_counts_from_now_and_is_capped() {
        // Sun, 06 Nov 1994 08:49:37 GMT: RFC 9110's example, in its three forms.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777 - 90);
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(retry_after_ms(form, now), Some(90_000), "{form}");
        }
        let past = now + Duration::from_secs(3_600);
        assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", past), Some(0), "a past date means now");
        let earlier = now - Duration::from_secs(7_200);
        assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", earlier), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(retry_after_ms("Sun, 06 Nov 1994 25:49:37 GMT", now), None);
    }
}
