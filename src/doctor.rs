//! `pullcred doctor`: everything between the kubelet and a pull, checked on the node, one line
//! per check (`ok`, `warn`, `FAIL` and the fix): the kubelet's credential-provider flags
//! (from its running command line, else the node flavour's files), the bin dir and the
//! provider's binary, the kubelet's provider config, pullcred's config, the cache dir, and
//! what the kubelet would be answered for each image. The node's files are read under
//! `root` (`/`, or a fake tree in the tests). Never prints a secret: answers are shown by
//! username and cache time only. Whatever file the kubelet's flags name is described by its
//! shape (file, line, field), never by its content.
//!
//! Anyone can start a process called `kubelet` with flags naming a root-only file, so a
//! running kubelet is believed only if it runs as root from a real, root-owned `kubelet`
//! executable (see [`Doctor::judge`]); anything else is ignored with a `warn`, and the
//! flavour's files (root's, too) say where the flags are.

use crate::kubelet_match::KubeletUrl;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::app;
use crate::cache::Cache;
use crate::config::{Config, ConfigError, Origin};
use crate::env::Env;
use crate::image::ImageRef;
use crate::kubelet::{self, KubeletVersion, Severity};
use crate::protocol::{ApiVersion, Request, go_duration};
use crate::workload::IdentityMode;

const CONFIG_FLAG: &str = "image-credential-provider-config";
const BIN_DIR_FLAG: &str = "image-credential-provider-bin-dir";
/// Where the kubelet's systemd unit keeps its processes, cgroup v2 then v1's named
/// hierarchy. `systemctl show -p MainPID kubelet` would ask systemd over D-Bus, which a fake
/// root (or a chroot) has not; the unit's cgroup is a file under the root, written by
/// systemd alone (an unprivileged user cannot move a process into a system unit's cgroup),
/// and holds the unit's main process and what it started. A kubelet found there is
/// preferred to any other process of that name.
const UNIT_CGROUPS: &[&str] = &[
    "sys/fs/cgroup/system.slice/kubelet.service/cgroup.procs",
    "sys/fs/cgroup/systemd/system.slice/kubelet.service/cgroup.procs",
];
/// Where each flavour keeps the kubelet (or, for k3s, the binary that embeds it), asked
/// for its version when no kubelet runs.
const KUBELET_BINARIES: &[&str] = &[
    "usr/bin/kubelet",
    "usr/local/bin/kubelet",
    "var/lib/rancher/rke2/bin/kubelet",
    "usr/local/bin/k3s",
];
/// How far before a config change the kubelet's start may seem to be and still count as
/// after it: `/proc/stat` tells the boot time in whole seconds.
const START_SLACK: Duration = Duration::from_secs(2);
/// How long a kubelet binary may take to say its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);
/// The provider config nodeadm (EKS AL2023) writes whenever it configures the node.
const NODEADM_PROVIDER_CONFIG: &str = "/etc/eks/image-credential-provider/config.json";
/// Flag files and `/proc` entries larger than this are not read further.
const MAX_READ_BYTES: u64 = 1 << 20;
/// Files where each flavour sets the kubelet's flags (see install/install.sh).
const FLAG_FILES: &[&str] = &[
    "etc/default/kubelet",
    "etc/sysconfig/kubelet",
    "etc/systemd/system/kubelet.service.d",
    "etc/eks/nodeadm.d",
    "etc/rancher/k3s/config.yaml",
    "etc/rancher/k3s/config.yaml.d",
    "etc/rancher/rke2/config.yaml",
    "etc/rancher/rke2/config.yaml.d",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Not tried, and why: no fault.
    Skip,
    Warn,
    Fail,
}

/// The checks' lines and how many failed.
pub struct Report {
    pub lines: Vec<String>,
    pub failures: usize,
}

impl Report {
    fn add(&mut self, status: Status, text: impl Into<String>) {
        let label = match status {
            Status::Ok => "ok  ",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => {
                self.failures += 1;
                "FAIL"
            }
        };
        self.lines.push(crate::logging::one_line(&format!(
            "{label} {}",
            text.into()
        )));
    }
}

/// What a doctor run looks at.
pub struct Doctor<'a> {
    /// The outside world, the node's files read under its root (`Env::root`).
    pub env: &'a Env,
    pub config: Result<Config, ConfigError>,
    pub cache_dir: Option<PathBuf>,
    /// Answer without reading or writing the cache.
    pub no_cache: bool,
    pub images: Vec<String>,
    /// The node's kubelet version as the operator names it; else its binary says.
    pub kubelet_version: Option<KubeletVersion>,
}

/// The running kubelet doctor believes: its pid, its argv, and the executable to ask its
/// version (`/proc/<pid>/exe` itself under the real root).
struct Running {
    pid: u32,
    args: Vec<String>,
    exe: PathBuf,
    shown: String,
}

impl Doctor<'_> {
    pub fn run(&self) -> Report {
        let mut r = Report {
            lines: Vec::new(),
            failures: 0,
        };
        let running = self.running_kubelet(&mut r);
        let flags = self.kubelet_flags(running.as_ref(), &mut r);
        let version = self.kubelet_version(running.as_ref(), &mut r);
        let providers = match &flags {
            Some((config, bin_dir)) => {
                self.kubelet_config(config, bin_dir, version, running.as_ref(), &mut r)
            }
            None => Vec::new(),
        };
        match &self.config {
            Ok(c) => r.add(
                Status::Ok,
                match &c.origin {
                    Origin::File(p) => {
                        format!("pullcred config {}: {} rule(s)", p.display(), c.rules.len())
                    }
                    Origin::Builtin => format!(
                        "pullcred config: none, the built-in rules ({})",
                        c.rules.len()
                    ),
                },
            ),
            Err(e) => r.add(
                Status::Fail,
                format!(
                    "pullcred config: {}: fix it (pullcred config check)",
                    crate::logging::error_chain(e)
                ),
            ),
        }
        self.cache(&mut r);
        if let Ok(config) = &self.config {
            self.images(config, &providers, flags.is_some(), &mut r);
        }
        r
    }

    fn under(&self, path: &Path) -> PathBuf {
        self.env.root().join(path.strip_prefix("/").unwrap_or(path))
    }

    /// The node's name for a path under the root: `/etc/x` for `ROOT/etc/x`.
    fn node_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(self.env.root()) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => path.to_path_buf(),
        }
    }

    /// A node file or directory whose content doctor trusts: root's, and writable by nobody
    /// else. `Err(None)`: there is none; `Err(Some(why))`: it is someone else's to write.
    fn trusted(&self, path: &Path) -> Result<std::fs::Metadata, Option<String>> {
        let meta = std::fs::metadata(path).map_err(|_| None)?;
        crate::secret_file::only_owner_writes(meta.uid(), meta.mode(), 0)
            .map_err(|e| Some(e.to_string()))?;
        Ok(meta)
    }

    /// The argv of the running kubelet doctor believes: the kubelet unit's, else the first
    /// (by pid) process called `kubelet` that [`Doctor::judge`] passes. Each process called
    /// `kubelet` that does not pass gets a `warn` saying why, and nothing of its arguments.
    fn running_kubelet(&self, r: &mut Report) -> Option<Running> {
        let proc_dir = self.env.root().join("proc");
        let mut unit: Vec<u32> = Vec::new();
        for rel in UNIT_CGROUPS {
            let path = self.env.root().join(rel);
            match self.trusted(&path) {
                Ok(_) => {
                    if let Ok(text) = read_small(&path) {
                        unit.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
                    }
                }
                Err(None) => {}
                Err(Some(why)) => r.add(Status::Warn, format!("/{rel}: {why}: not read")),
            }
        }
        let mut all: Vec<u32> = std::fs::read_dir(&proc_dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .collect()
            })
            .unwrap_or_default();
        all.sort_unstable();
        let mut judged = Vec::new();
        for pid in unit.into_iter().chain(all) {
            if judged.contains(&pid) {
                continue;
            }
            judged.push(pid);
            let dir = proc_dir.join(pid.to_string());
            let Some(args) = cmdline(&dir) else { continue };
            if Path::new(&args[0])
                .file_name()
                .is_none_or(|n| n != "kubelet")
            {
                continue;
            }
            match self.judge(&dir) {
                Ok((exe, shown)) => {
                    return Some(Running {
                        pid,
                        args,
                        exe,
                        shown,
                    });
                }
                Err(why) => r.add(
                    Status::Warn,
                    format!(
                        "process {pid} is called kubelet but is not believed: {why}; its flags are ignored"
                    ),
                ),
            }
        }
        None
    }

    /// Whether the process at `dir` (`/proc/<pid>`) is a kubelet to believe: every uid in its
    /// `status` (real, effective, saved, filesystem) is root's, its `/proc` entry is root's,
    /// and its `exe` is a regular executable file named `kubelet`, root's and writable by no
    /// one else. A user's process fails the first (a setuid program started under another
    /// name keeps the user's real uid); a root process that merely calls itself kubelet
    /// fails the last. Under the real root the `exe` link is followed by the kernel (it
    /// names the file even in another mount namespace); under a fake root its target is
    /// looked up under that root, not followed. `Err` says why not, naming no file the
    /// process's arguments name. `Ok`: the executable to run (to ask its version) and its
    /// name on the node.
    fn judge(&self, dir: &Path) -> Result<(PathBuf, String), String> {
        let status = read_small(&dir.join("status")).map_err(|_| "no readable status")?;
        let uids: Vec<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|u| {
                u.split_whitespace()
                    .filter_map(|u| u.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if uids.len() != 4 {
            return Err("its status has no Uid line".into());
        }
        if let Some(uid) = uids.iter().find(|u| **u != 0) {
            return Err(format!("it runs as uid {uid}, not root"));
        }
        let owner = std::fs::metadata(dir)
            .map_err(|e| format!("its /proc entry cannot be read: {e}"))?
            .uid();
        if owner != 0 {
            return Err(format!("its /proc entry is owned by uid {owner}, not root"));
        }
        let link = dir.join("exe");
        let target =
            std::fs::read_link(&link).map_err(|e| format!("its executable cannot be read: {e}"))?;
        let shown = target.display();
        if target.to_string_lossy().ends_with(" (deleted)") {
            return Err(format!(
                "its executable {shown} was deleted or replaced since it started"
            ));
        }
        let exe = if self.env.root() == Path::new("/") {
            link.clone()
        } else {
            self.under(&target)
        };
        let meta = if self.env.root() == Path::new("/") {
            std::fs::metadata(&exe)
        } else {
            std::fs::symlink_metadata(&exe)
        }
        .map_err(|e| format!("its executable {shown} cannot be read: {e}"))?;
        if !meta.is_file() {
            return Err(format!("its executable {shown} is not a regular file"));
        }
        if meta.mode() & 0o111 == 0 {
            return Err(format!("its executable {shown} is not executable"));
        }
        crate::secret_file::only_owner_writes(meta.uid(), meta.mode(), 0)
            .map_err(|why| format!("its executable {shown} is {why}"))?;
        if target.file_name().is_none_or(|n| n != "kubelet") {
            return Err(format!("its executable {shown} is not named kubelet"));
        }
        Ok((exe, shown.to_string()))
    }

    /// The node's kubelet version: as the operator names it, else as the running kubelet's
    /// executable says (`--version`), else as the flavour's kubelet binary says (root's and
    /// writable by no one else; never a program found on `PATH`), else the newest, with a
    /// `warn`.
    fn kubelet_version(&self, running: Option<&Running>, r: &mut Report) -> KubeletVersion {
        if let Some(v) = self.kubelet_version {
            r.add(
                Status::Ok,
                format!("kubelet version {v} (--kubelet-version)"),
            );
            return v;
        }
        let mut candidates: Vec<(PathBuf, String)> = Vec::new();
        // Only a kubelet in doctor's own mount namespace is run: a container's root
        // process called kubelet can pass the other checks, and its executable would run
        // here, as root, in the host's namespaces.
        if let Some(k) = running {
            if self.same_mount_namespace(k.pid) {
                candidates.push((k.exe.clone(), format!("the running kubelet's {}", k.shown)));
            } else {
                r.add(
                    Status::Warn,
                    format!(
                        "kubelet version: process {} runs in another mount namespace (a container?): its executable is not run",
                        k.pid
                    ),
                );
            }
        }
        if candidates.is_empty() {
            for rel in KUBELET_BINARIES {
                let path = self.env.root().join(rel);
                match self.trusted(&path) {
                    Ok(m) if m.is_file() && m.mode() & 0o111 != 0 => {
                        candidates.push((path, format!("/{rel}")))
                    }
                    Ok(_) | Err(None) => {}
                    Err(Some(why)) => r.add(Status::Warn, format!("/{rel}: {why}: not run")),
                }
            }
        }
        for (path, shown) in candidates {
            match version_of(&path) {
                Ok(v) => {
                    r.add(
                        Status::Ok,
                        format!(
                            "kubelet version {v} ({shown} --version): its provider config is checked as that version reads it"
                        ),
                    );
                    return v;
                }
                Err(why) => r.add(
                    Status::Warn,
                    format!("kubelet version: {shown} --version: {why}"),
                ),
            }
        }
        let newest = KubeletVersion::NEWEST;
        r.add(
            Status::Warn,
            format!(
                "kubelet version unknown: its provider config is checked as the kubelet of Kubernetes {newest} reads it; name the node's with --kubelet-version"
            ),
        );
        newest
    }

    /// Whether process `pid` sees the files doctor sees. Under a fake root, the executable
    /// run is a file of the tree, so it does.
    fn same_mount_namespace(&self, pid: u32) -> bool {
        if self.env.root() != Path::new("/") {
            return true;
        }
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
        ns(&pid.to_string()).is_some_and(|theirs| Some(theirs) == ns("self"))
    }

    /// When the running kubelet started: `/proc/<pid>/stat`'s start time (clock ticks
    /// after boot) after `/proc/stat`'s boot time.
    fn started(&self, pid: u32) -> Option<SystemTime> {
        let stat = read_small(&self.env.root().join(format!("proc/{pid}/stat"))).ok()?;
        // The command name may hold spaces and parentheses: fields start after the last `)`.
        let after = &stat[stat.rfind(')')? + 1..];
        // The 22nd field, the 20th after the name.
        let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
        let boot: u64 = read_small(&self.env.root().join("proc/stat"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let per_second = rustix::param::clock_ticks_per_second().max(1);
        let since_boot = Duration::from_secs(ticks / per_second)
            + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second);
        UNIX_EPOCH
            .checked_add(Duration::from_secs(boot))?
            .checked_add(since_boot)
    }

    /// The kubelet reads its provider config when it starts, never after: a file (or a
    /// directory's entry, or the directory itself) changed since then is not what it runs.
    fn read_since_start(
        &self,
        config: &Path,
        files: &[PathBuf],
        running: &Running,
        r: &mut Report,
    ) {
        let Some(start) = self.started(running.pid) else {
            r.add(
                Status::Warn,
                format!(
                    "kubelet config {}: the running kubelet's start time cannot be read: whether it has read this config is unknown",
                    config.display()
                ),
            );
            return;
        };
        for path in files {
            let Ok(m) = std::fs::metadata(path) else {
                continue;
            };
            // The content's change, not the inode's (a chmod is not a new config), with
            // slack for a boot time told in whole seconds.
            if m.modified().is_ok_and(|c| c > start + START_SLACK) {
                r.add(
                    Status::Fail,
                    format!(
                        "kubelet config {}: changed after the running kubelet started, and the kubelet reads it only when it starts: restart the kubelet",
                        self.node_path(path).display()
                    ),
                );
                return;
            }
        }
    }

    /// The bin dir, pullcred's binaries in it, and the provider config (a directory's
    /// entries too): the kubelet runs the binaries as root and believes the config, so each
    /// is root's and writable by no one else.
    fn owned_by_root(
        &self,
        files: &[PathBuf],
        bin_path: &Path,
        providers: &[kubelet::Provider],
        r: &mut Report,
    ) {
        let mut paths = vec![bin_path.to_path_buf()];
        let mut names: Vec<&str> = providers
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| n.starts_with("pullcred") && !n.contains('/'))
            .collect();
        names.push("pullcred-mint");
        names.dedup();
        paths.extend(names.iter().map(|n| bin_path.join(n)));
        paths.extend_from_slice(files);
        for path in paths {
            if let Err(Some(why)) = self.trusted(&path) {
                r.add(
                    Status::Fail,
                    format!(
                        "{}: {why}: the kubelet runs pullcred as root from what is there; chown root and chmod go-w it",
                        self.node_path(&path).display()
                    ),
                );
            }
        }
    }

    /// The two flags, from the running kubelet, else from the flavour's files.
    fn kubelet_flags(
        &self,
        running: Option<&Running>,
        r: &mut Report,
    ) -> Option<(PathBuf, PathBuf)> {
        let (found, from) = match running {
            Some(k) => (
                flags_in(&k.args.join(" ")),
                "the running kubelet".to_string(),
            ),
            None => {
                let mut text = String::new();
                let mut seen = Vec::new();
                for rel in FLAG_FILES {
                    let path = self.env.root().join(rel);
                    let files: Vec<PathBuf> = match self.trusted(&path) {
                        Ok(m) if m.is_dir() => {
                            let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
                                .map(|d| d.flatten().map(|e| e.path()).collect())
                                .unwrap_or_default();
                            v.sort();
                            v
                        }
                        Ok(_) => vec![path],
                        Err(None) => Vec::new(),
                        Err(Some(why)) => {
                            r.add(Status::Warn, format!("/{rel}: {why}: not read"));
                            Vec::new()
                        }
                    };
                    for f in files {
                        match self.trusted(&f) {
                            Ok(m) if m.is_file() => {}
                            Ok(_) | Err(None) => continue,
                            Err(Some(why)) => {
                                r.add(
                                    Status::Warn,
                                    format!("{}: {why}: not read", self.node_path(&f).display()),
                                );
                                continue;
                            }
                        }
                        if let Ok(t) = read_small(&f) {
                            text.push_str(&t);
                            text.push('\n');
                            seen.push(format!("/{rel}"));
                        }
                    }
                }
                seen.dedup();
                (
                    flags_in(&text),
                    format!(
                        "no running kubelet; its flavour's files ({})",
                        seen.join(", ")
                    ),
                )
            }
        };
        match found {
            (Some(c), Some(b)) => {
                r.add(
                    Status::Ok,
                    format!(
                        "kubelet flags ({from}): --{CONFIG_FLAG}={} --{BIN_DIR_FLAG}={}",
                        c, b
                    ),
                );
                Some((PathBuf::from(c), PathBuf::from(b)))
            }
            (c, b) => {
                let missing: Vec<&str> = [(c.is_none(), CONFIG_FLAG), (b.is_none(), BIN_DIR_FLAG)]
                    .into_iter()
                    .filter_map(|(m, f)| m.then_some(f))
                    .collect();
                r.add(
                    Status::Fail,
                    format!(
                        "kubelet flags ({from}): no --{}: the kubelet asks no credential provider; \
                         run install/install.sh (or set the flags) and restart the kubelet",
                        missing.join(", --")
                    ),
                );
                None
            }
        }
    }

    fn kubelet_config(
        &self,
        config: &Path,
        bin_dir: &Path,
        version: KubeletVersion,
        running: Option<&Running>,
        r: &mut Report,
    ) -> Vec<kubelet::Provider> {
        let (config_path, bin_path) = (self.under(config), self.under(bin_dir));
        if !bin_path.is_dir() {
            r.add(
                Status::Fail,
                format!(
                    "bin dir {}: missing: install the binary there (install/install.sh)",
                    bin_dir.display()
                ),
            );
        } else {
            r.add(Status::Ok, format!("bin dir {}", bin_dir.display()));
        }
        let (providers, mut findings) = kubelet::load(&config_path, version);
        if bin_path.is_dir() {
            findings.extend(kubelet::check_bin_dir(&providers, &bin_path));
        }
        if let Ok(c) = &self.config {
            let file = match &c.origin {
                Origin::File(p) => p.clone(),
                Origin::Builtin => PathBuf::from(crate::config::DEFAULT_CONFIG_PATH),
            };
            findings.extend(kubelet::cross_check(&providers, c, &file));
        }
        for f in &findings {
            let status = match f.severity {
                Severity::Error => Status::Fail,
                Severity::Warning => Status::Warn,
            };
            // A finding names file, line and field, never the file's text; and the node's
            // path, not the fake root's.
            let shown = kubelet::Finding {
                file: self.node_path(&f.file),
                ..f.clone()
            };
            r.add(status, format!("kubelet config {}", shown.text()));
        }
        // Counted, not named: the names are the file's text.
        let ours = providers
            .iter()
            .filter(|p| p.name.starts_with("pullcred"))
            .count();
        if ours == 0 && !providers.is_empty() {
            let why = if config == Path::new(NODEADM_PROVIDER_CONFIG) {
                "nodeadm rewrites this file whenever it configures the node (each boot), dropping \
                 providers merged into it; run install/install.sh, which points the kubelet at a \
                 file of pullcred's own"
            } else {
                "the kubelet never asks pullcred; run install/install.sh (or pullcred kubelet-config)"
            };
            r.add(
                Status::Fail,
                format!(
                    "kubelet config {}: no pullcred provider: {why}",
                    config.display()
                ),
            );
        } else if findings.iter().all(|f| f.severity != Severity::Error) {
            r.add(
                Status::Ok,
                format!(
                    "kubelet config {}: {} provider(s), {ours} of them pullcred's, as the kubelet of Kubernetes {version} reads it",
                    config.display(),
                    providers.len()
                ),
            );
        }
        // The provider config's files, listed once for both checks.
        let files = config_files(&config_path);
        if bin_path.is_dir() {
            self.owned_by_root(&files, &bin_path, &providers, r);
        }
        if let Some(k) = running
            && config_path.exists()
        {
            self.read_since_start(config, &files, k, r);
        }
        providers
    }

    fn cache(&self, r: &mut Report) {
        let Some(dir) = &self.cache_dir else {
            r.add(
                Status::Warn,
                "cache dir: none (HOME unset): every request mints",
            );
            return;
        };
        match std::fs::metadata(dir) {
            Err(_) => r.add(
                Status::Ok,
                format!(
                    "cache dir {}: not made yet (the first mint makes it, 0700)",
                    dir.display()
                ),
            ),
            Ok(m) if m.uid() != self.env.uid() => r.add(
                Status::Fail,
                format!(
                    "cache dir {}: owned by uid {}, not {}: remove it (pullcred remakes it)",
                    dir.display(),
                    m.uid(),
                    self.env.uid()
                ),
            ),
            Ok(m) if m.mode() & 0o077 != 0 => r.add(
                Status::Fail,
                format!(
                    "cache dir {}: mode {:04o}: chmod 0700 it",
                    dir.display(),
                    m.mode() & 0o7777
                ),
            ),
            Ok(_) => r.add(
                Status::Ok,
                format!("cache dir {}: the caller's, 0700", dir.display()),
            ),
        }
    }

    /// Each image (or each rule without wildcards) answered as the kubelet would be.
    fn images(
        &self,
        config: &Config,
        providers: &[kubelet::Provider],
        wired: bool,
        r: &mut Report,
    ) {
        let mut images = self.images.clone();
        if images.is_empty() {
            for rule in &config.rules {
                match rule.patterns.iter().find(|p| !p.to_string().contains(['*', '?', '['])) {
                    Some(p) => images.push(format!("{p}/doctor:latest")),
                    None => r.add(
                        Status::Ok,
                        format!("rule {}: every pattern has wildcards; name an image to try it (pullcred doctor IMAGE)", rule.number),
                    ),
                }
            }
        }
        let cache = if self.no_cache {
            None
        } else {
            self.cache_dir
                .as_ref()
                .and_then(|d| Cache::open(d, self.env.uid()).ok())
        };
        for image in images {
            if wired && let Ok(parsed) = ImageRef::parse(&image) {
                // As the kubelet matches (raw path prefix, case-sensitive host), not as
                // pullcred's rules do: this predicts what the kubelet does.
                let target = KubeletUrl::of_image(&parsed);
                let routed = providers
                    .iter()
                    .filter(|p| p.name.starts_with("pullcred"))
                    .any(|p| p.routes.iter().any(|m| m.matches(&target)));
                if !routed {
                    r.add(
                        Status::Fail,
                        format!("image {image}: no pullcred provider's matchImages covers it: the kubelet pulls it anonymously"),
                    );
                }
            }
            // A rule that answers only with the pod's own identity cannot be tried here:
            // doctor has no pod's token to send, and that is no fault of the node's.
            if let Ok(parsed) = ImageRef::parse(&image)
                && let Some(selected) = config.select(&parsed)
                && (selected.rule.identity == IdentityMode::ServiceAccount
                    || !selected.rule.source.cacheable())
            {
                let rule = selected.rule;
                r.add(
                    Status::Skip,
                    format!(
                        "image {image}: rule {} ({}) answers with the pod's own identity and needs its service account token, which the kubelet sends on a pod's pull; not tried here (the kubelet config lines say whether it is sent)",
                        rule.number,
                        rule.source.name()
                    ),
                );
                continue;
            }
            let req = Request {
                api_version: ApiVersion::V1,
                image: image.clone(),
                service_account_token: None,
                service_account_annotations: Default::default(),
            };
            let deadline = Instant::now() + config.deadline.min(Duration::from_secs(20));
            match app::answer(&req, config, self.env, cache.as_ref(), deadline) {
                Ok(resp) if resp.auth.is_empty() => r.add(
                    Status::Warn,
                    format!("image {image}: no rule matches: answered with no credentials"),
                ),
                Ok(resp) => {
                    let (key, auth) = resp.auth.iter().next().expect("one entry");
                    r.add(
                        Status::Ok,
                        format!(
                            "image {image}: answered for {key} as {:?}, cacheDuration {}",
                            auth.username,
                            go_duration(resp.cache_duration)
                        ),
                    )
                }
                Err(e) => r.add(
                    Status::Fail,
                    format!("image {image}: {}", crate::logging::error_chain(&e)),
                ),
            }
        }
    }
}

/// The provider config at `path`: the file, or the directory and its entries in name order.
fn config_files(path: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    entries.sort();
    entries.insert(0, path.to_path_buf());
    entries
}

/// What `path --version` says the Kubernetes version is (`Kubernetes v1.33.2`, k3s's
/// `k3s version v1.33.1+k3s1 (…)`), run without the caller's environment, its output
/// bounded, for at most [`VERSION_TIMEOUT`].
fn version_of(path: &Path) -> Result<KubeletVersion, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(path)
        .arg("--version")
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let until = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", VERSION_TIMEOUT.as_secs()));
            }
        }
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        // A child of its own could hold the pipe open: read what is there, never wait.
        let _ = rustix::fs::fcntl_setfl(&stdout, rustix::fs::OFlags::NONBLOCK);
        let _ = stdout.take(4096).read_to_end(&mut out);
    }
    let out = String::from_utf8_lossy(&out);
    out.split_whitespace()
        .filter(|w| w.starts_with("v1."))
        .find_map(|w| KubeletVersion::parse(w).ok())
        .ok_or_else(|| "no Kubernetes version (1.26 or later) in what it printed".to_string())
}

/// The argv in `dir/cmdline` (a `/proc/<pid>`), if any.
fn cmdline(dir: &Path) -> Option<Vec<String>> {
    let raw = read_small(&dir.join("cmdline")).ok()?;
    let args: Vec<String> = raw
        .split('\0')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    (!args.is_empty()).then_some(args)
}

/// A small text file: a regular file or a `/proc` entry (never a FIFO: it is opened
/// without blocking), at most [`MAX_READ_BYTES`] of it, invalid UTF-8 replaced.
fn read_small(path: &Path) -> std::io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    let mut buf = Vec::new();
    file.take(MAX_READ_BYTES).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The two flags' values in a command line or a config file's text: `--flag=v`, `--flag v`,
/// or k3s's `flag=v` in a `kubelet-arg` list; the last one wins, as for the kubelet.
fn flags_in(text: &str) -> (Option<String>, Option<String>) {
    let value = |flag: &str| {
        let mut found = None;
        let mut rest = text;
        while let Some(i) = rest.find(flag) {
            let after = &rest[i + flag.len()..];
            let v = after
                .trim_start_matches(['=', ' '])
                .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .next()
                .unwrap_or("");
            if !v.is_empty() && !v.starts_with('-') {
                found = Some(v.to_string());
            }
            rest = after;
        }
        found
    };
    (value(CONFIG_FLAG), value(BIN_DIR_FLAG))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found_in_each_flavours_spelling() {
        for text in [
            "kubelet --image-credential-provider-config=/c --image-credential-provider-bin-dir=/b",
            "KUBELET_EXTRA_ARGS=\"--x --image-credential-provider-config /c --image-credential-provider-bin-dir=/b\"",
            "kubelet-arg+:\n  - image-credential-provider-config=/c\n  - image-credential-provider-bin-dir=/b\n",
        ] {
            assert_eq!(
                flags_in(text),
                (Some("/c".into()), Some("/b".into())),
                "{text}"
            );
        }
        assert_eq!(flags_in("kubelet --config=/k"), (None, None));
    }

    #[test]
    fn doctor_names_the_nodes_path_under_any_root() {
        for (root, path, want) in [
            ("/", "/etc/kubernetes/c.yaml", "/etc/kubernetes/c.yaml"),
            (
                "/tmp/node",
                "/tmp/node/etc/kubernetes/c.yaml",
                "/etc/kubernetes/c.yaml",
            ),
            ("/tmp/node", "/elsewhere/c.yaml", "/elsewhere/c.yaml"),
        ] {
            let env = Env::from_vars([("HOME", "/h")], 0).with_root(root.into());
            let doctor = Doctor {
                env: &env,
                config: Config::load(Some(Path::new("/nonexistent/pullcred.toml")), 0),
                cache_dir: None,
                no_cache: true,
                images: Vec::new(),
                kubelet_version: None,
            };
            assert_eq!(doctor.node_path(Path::new(path)), Path::new(want), "{root}");
        }
    }
}
