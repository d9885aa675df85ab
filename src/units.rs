//! Durations as the config writes them (`10s`, `1m30s`, `500ms`, `2h`): one parser for every
//! module that reads one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second of year 9999: a later time is no real credential's (and cannot be written
/// as RFC 3339 in messages).
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// `secs` after the Unix epoch, if that is a time a credential can mean: an `exp` or an
/// `expires_in` comes from a token or an upstream, and an absurd one must be refused, never
/// overflow into a panic.
pub fn unix_seconds(secs: u64) -> Option<SystemTime> {
    (secs <= MAX_UNIX_SECONDS).then(|| UNIX_EPOCH + Duration::from_secs(secs))
}

/// `now + life`, if that is still such a time.
pub fn after(now: SystemTime, life: Duration) -> Option<SystemTime> {
    let at = now.checked_add(life)?;
    let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    unix_seconds(secs).map(|_| at)
}

pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(s).map_err(|why| DurationError {
        text: s.to_string(),
        why,
    })
}

/// A config's duration that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a duration ({why})")]
pub struct DurationError {
    text: String,
    why: humantime::DurationError,
}
