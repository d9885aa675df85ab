//! The outside world a request sees: environment variables, the caller's uid, the clock.
//!
//! Everything that differs between a node and a test is read here once and passed down, so
//! no module reaches for process globals and tests need none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

/// With the `test-clock` feature (tests only), this variable shifts the clock by whole
/// seconds (negative: into the past), so expiry can be tested without waiting.
#[cfg(feature = "test-clock")]
pub const TEST_CLOCK_OFFSET: &str = "PULLCRED_TEST_CLOCK_OFFSET";

/// Where a node's stable identity lives (systemd, then D-Bus).
const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
const MAX_MACHINE_ID_BYTES: u64 = 256;

#[derive(Clone, Debug)]
pub struct Env {
    vars: BTreeMap<String, String>,
    uid: u32,
}

impl Env {
    /// A snapshot of this process's environment.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            uid: rustix::process::geteuid().as_raw(),
        }
    }

    /// An environment made of the given variables, for tests.
    pub fn from_vars<I, K, V>(vars: I, uid: u32) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            uid,
        }
    }

    /// A variable's value; an empty value counts as unset, as most tools treat it.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The effective uid of the caller: secret and cache files must belong to it.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    pub fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        #[cfg(feature = "test-clock")]
        if let Some(offset) = self
            .var(TEST_CLOCK_OFFSET)
            .and_then(|v| v.parse::<i64>().ok())
        {
            let shift = std::time::Duration::from_secs(offset.unsigned_abs());
            return if offset >= 0 {
                now + shift
            } else {
                now - shift
            };
        }
        now
    }

    /// The node's machine id, used to spread refreshes across a fleet; the hostname where
    /// there is none. Read only when minting, never on a cache hit.
    pub fn machine_id(&self) -> String {
        MACHINE_ID_FILES
            .iter()
            .find_map(|p| {
                use std::io::Read;
                // A machine id is 33 bytes; read no more than a little over that.
                let mut id = String::new();
                std::fs::File::open(p)
                    .ok()?
                    .take(MAX_MACHINE_ID_BYTES)
                    .read_to_string(&mut id)
                    .ok()?;
                let id = id.trim();
                (!id.is_empty()).then(|| id.to_string())
            })
            .or_else(|| {
                rustix::system::uname()
                    .nodename()
                    .to_str()
                    .ok()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// The default cache dir: `/run/pullcred` for root (a tmpfs on systemd hosts, so tokens
    /// never reach a disk and a reboot starts clean), else the user's cache dir as the XDG
    /// base directory spec has it: `$XDG_CACHE_HOME` if absolute, else `~/.cache`. Read from
    /// this `Env`, not the process's.
    pub fn default_cache_dir(&self) -> Option<PathBuf> {
        if self.uid == 0 {
            return Some(PathBuf::from("/run/pullcred"));
        }
        let base = self
            .var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| self.home().map(|h| h.join(".cache")))?;
        Some(base.join("pullcred"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cache_dir_follows_the_xdg_spec_from_this_env() {
        let dir =
            |vars: &[(&str, &str)], uid| Env::from_vars(vars.to_vec(), uid).default_cache_dir();
        assert_eq!(dir(&[("HOME", "/home/u")], 0), Some("/run/pullcred".into()));
        assert_eq!(
            dir(&[("HOME", "/home/u")], 1000),
            Some("/home/u/.cache/pullcred".into())
        );
        assert_eq!(
            dir(
                &[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/var/cache/u")],
                1000
            ),
            Some("/var/cache/u/pullcred".into())
        );
        // A relative XDG_CACHE_HOME is ignored, as the spec says.
        assert_eq!(
            dir(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "rel")], 1000),
            Some("/home/u/.cache/pullcred".into())
        );
        assert_eq!(dir(&[], 1000), None);
    }
}
