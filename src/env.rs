//! The outside world a request sees: environment variables, the caller's uid, the clock.
//!
//! Everything that differs between a node and a test is read here once and passed down, so
//! no module reaches for process globals and tests need none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

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
        SystemTime::now()
    }
}
