//! The outside world a request sees: environment variables, the caller's uid, the clock,
//! and the root under which the node's own files (machine id, the kubelet's) are read.
//!
//! Everything that differs between a node and a test is read here and passed down, so no
//! module reaches for process globals and tests need none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// Shifts pullcred's clock by whole seconds (negative: into the past), so that tests and
/// the fleet simulation see tokens age without waiting. A test hook, documented in
/// docs/architecture.md: the binary that ships is the binary tested, so it honours it too
/// (only whoever sets the kubelet's provider `env`, root, can set it).
pub const TEST_CLOCK_OFFSET: &str = "PULLCRED_TEST_CLOCK_OFFSET";

/// The time as pullcred reads it everywhere (cache freshness, token expiry, signed
/// assertions): the system clock, moved by [`TEST_CLOCK_OFFSET`] when set.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset: i64,
}

impl Clock {
    pub fn now(self) -> SystemTime {
        let now = SystemTime::now();
        let shift = std::time::Duration::from_secs(self.offset.unsigned_abs());
        if self.offset >= 0 {
            now + shift
        } else {
            now - shift
        }
    }
}

/// Where a node's stable identity lives (systemd, then D-Bus).
const MACHINE_ID_FILES: [&str; 2] = ["etc/machine-id", "var/lib/dbus/machine-id"];
const MAX_MACHINE_ID_BYTES: u64 = 256;

#[derive(Debug)]
pub struct Env {
    vars: Vars,
    uid: u32,
    /// Where the node's files are: `/`, or a tree standing for a node (`doctor --root`).
    root: PathBuf,
}

/// Where variables come from. A cache hit reads a handful of variables, so the process's
/// are looked up one by one when first asked for (copying the whole environment costs a hit
/// measurably); tests give a fixed set.
#[derive(Debug)]
enum Vars {
    /// Each name's value once read. Values are leaked: a few short strings in a process
    /// that lives for milliseconds, so `var` can hand out plain references.
    Process(Mutex<BTreeMap<String, Option<&'static str>>>),
    Fixed(BTreeMap<String, String>),
}

impl Clone for Env {
    fn clone(&self) -> Self {
        let vars = match &self.vars {
            Vars::Process(_) => Vars::Process(Mutex::default()),
            Vars::Fixed(map) => Vars::Fixed(map.clone()),
        };
        Env {
            vars,
            uid: self.uid,
            root: self.root.clone(),
        }
    }
}

impl Env {
    /// This process's environment (read as asked; the process never changes its own).
    pub fn from_process() -> Self {
        Env {
            vars: Vars::Process(Mutex::default()),
            uid: rustix::process::geteuid().as_raw(),
            root: PathBuf::from("/"),
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
            vars: Vars::Fixed(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            uid,
            root: PathBuf::from("/"),
        }
    }

    /// The same environment, reading the node's files under `root`.
    pub fn with_root(self, root: PathBuf) -> Self {
        Env { root, ..self }
    }

    /// Where the node's files are read from (`/` on a node).
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// A variable's value; an empty value (or one that is not UTF-8) counts as unset, as most
    /// tools treat it.
    pub fn var(&self, name: &str) -> Option<&str> {
        match &self.vars {
            Vars::Fixed(map) => map.get(name).map(String::as_str).filter(|v| !v.is_empty()),
            Vars::Process(read) => {
                let mut read = read.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(value) = read.get(name) {
                    return *value;
                }
                let value = std::env::var(name)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| &*Box::leak(v.into_boxed_str()));
                read.insert(name.to_string(), value);
                value
            }
        }
    }

    /// The names of the variables that start with `prefix` (only UTF-8 names).
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        match &self.vars {
            Vars::Fixed(map) => map
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect(),
            Vars::Process(_) => std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .filter(|k| k.starts_with(prefix))
                .collect(),
        }
    }

    /// `NAME="value"` for each of `names` (`""` when unset), space-separated: the variables
    /// that select a source's principal or endpoint, for its cache key. Values are quoted
    /// and escaped, so no value can pass for the next variable.
    pub fn vars_text(&self, names: &[&str]) -> String {
        names
            .iter()
            .map(|n| format!("{n}={:?}", self.var(n).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The effective uid of the caller: secret and cache files must belong to it.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    /// The clock every part of a request reads.
    pub fn clock(&self) -> Clock {
        Clock {
            offset: self
                .var(TEST_CLOCK_OFFSET)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0),
        }
    }

    pub fn now(&self) -> SystemTime {
        self.clock().now()
    }

    /// The node's machine id, used to spread refreshes across a fleet; the hostname where
    /// there is none. Read only when minting, never on a cache hit.
    pub fn machine_id(&self) -> String {
        // The fleet simulation (bench/fleet.py) runs many "nodes" on one machine: a test
        // hook, documented with the clock's.
        if let Some(id) = self.var("PULLCRED_TEST_MACHINE_ID") {
            return id.to_string();
        }
        MACHINE_ID_FILES
            .iter()
            .map(|p| self.root.join(p))
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
    fn the_process_environment_is_read_as_asked_and_kept() {
        let env = Env::from_process();
        let path = std::env::var("PATH").ok().filter(|p| !p.is_empty());
        assert_eq!(env.var("PATH").map(str::to_string), path);
        assert_eq!(
            env.var("PATH").map(str::to_string),
            path,
            "a second read agrees"
        );
        assert_eq!(env.var("PULLCRED_SURELY_UNSET_VARIABLE"), None);
        assert_eq!(env.clone().var("PATH").map(str::to_string), path);
    }

    #[test]
    fn vars_text_values_cannot_pass_for_another_variable() {
        let text = |vars: Vec<(&str, &str)>| Env::from_vars(vars, 0).vars_text(&["A", "B"]);
        assert_ne!(
            text(vec![("A", "x B=y")]),
            text(vec![("A", "x"), ("B", "y")])
        );
        assert_eq!(text(vec![("B", "y")]), "A=\"\" B=\"y\"");
    }

    #[test]
    fn the_machine_id_is_read_under_the_nodes_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/machine-id"), "0123abcd\n").unwrap();
        let env = Env::from_vars([("HOME", "/h")], 0).with_root(root.path().into());
        assert_eq!(env.machine_id(), "0123abcd");
    }

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
