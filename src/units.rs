//! Durations as the config writes them (`10s`, `1m30s`, `500ms`, `2h`): one parser for every
//! module that reads one.

use std::time::Duration;

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e})"))
}
