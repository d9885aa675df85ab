//! The operators' commands and plugin mode, each a function of the run's [`Settings`]
//! (arguments are parsed in `args`, resolved in `settings`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::args::{Command, LowArgs};
use crate::cache::Cache;
use crate::config::{Config, DEFAULT_CONFIG_PATH, Origin};
use crate::env::Env;
use crate::error::Error;
use crate::kubelet::{KubeletVersion, MergeError, Severity};
use crate::protocol::{self, ApiVersion, Request};
use crate::settings::Settings;
use crate::{app, deadline};

/// Runs the command `low` names.
pub fn run(low: LowArgs, env: Env) -> Result<(), Error> {
    let settings = Settings::resolve(&low, &env);
    crate::logging::init(settings.verbose, env.var("PULLCRED_LOG"));
    match low.command {
        Command::Plugin => plugin(&settings, env),
        Command::Get { image, api_version } => get(&settings, env, image, api_version),
        Command::ConfigCheck {
            file,
            kubelet,
            bin_dir,
            kubelet_version,
            no_files,
            root,
            secrets,
        } => config_check(
            &settings,
            &env,
            file,
            Kubelet {
                config: kubelet,
                bin_dir,
                version: kubelet_version,
            },
            (!no_files).then_some(Files { root, secrets }),
        ),
        Command::ConfigMatchImages { file } => match_images(&settings, &env, file),
        Command::CacheList => cache_list(&settings, &env),
        Command::CachePurge { registry, expired } => {
            cache_purge(&settings, &env, registry, expired)
        }
        Command::Doctor {
            images,
            no_cache,
            root,
            kubelet_version,
        } => doctor(&settings, &env, images, no_cache, &root, kubelet_version),
        Command::KubeletConfig {
            file,
            merge,
            drop,
            kubelet_version,
        } => kubelet_config(&settings, &env, file, merge, drop, kubelet_version),
        Command::Version => print(&format!(
            "pullcred {0} (pullcred and pullcred-mint {0})\ncommit {1}\ntarget {2}\n",
            env!("CARGO_PKG_VERSION"),
            env!("PULLCRED_COMMIT"),
            env!("PULLCRED_TARGET"),
        )),
        Command::Help(text) => print(&text),
        Command::Helper(op) => {
            let config = Config::load(settings.config.as_deref(), env.uid())?;
            let cache = open_cache(&settings, &config, &env);
            crate::helper::run(op, config, env, cache)
        }
    }
}

/// What the kubelet runs: a request on stdin, the response on stdout.
fn plugin(settings: &Settings, env: Env) -> Result<(), Error> {
    let config = Config::load(settings.config.as_deref(), env.uid())?;
    let cache = open_cache(settings, &config, &env);
    serve(config, env, cache, |_| {
        protocol::read_request(std::io::stdin().lock()).map_err(Error::from)
    })
}

/// `get IMAGE`: the response the kubelet would get.
fn get(settings: &Settings, env: Env, image: String, api_version: ApiVersion) -> Result<(), Error> {
    let config = Config::load(settings.config.as_deref(), env.uid())?;
    let cache = open_cache(settings, &config, &env);
    serve(config, env, cache, move |_| {
        Ok(Request {
            api_version,
            image,
            service_account_token: None,
            service_account_annotations: Default::default(),
        })
    })
}

/// The config named by FILE, else by the settings.
fn config_of(settings: &Settings, env: &Env, file: Option<PathBuf>) -> Result<Config, Error> {
    Ok(Config::load(
        file.as_deref().or(settings.config.as_deref()),
        env.uid(),
    )?)
}

/// `config check --kubelet`: the kubelet's CredentialProviderConfig, its bin dir and version.
struct Kubelet {
    config: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    version: Option<KubeletVersion>,
}

/// Where `config check` reads the secret files: under `root`, with `secrets` standing for
/// files of `SECRETS_DIR` not installed yet.
struct Files {
    root: PathBuf,
    secrets: Vec<(String, PathBuf)>,
}

impl Files {
    /// The file to read for `path`, as a rule names it: a secret about to be installed
    /// there, its stand-in; a path the config gave relative to its own directory (`beside`)
    /// is read there; an absolute one under the root.
    fn at(&self, path: &Path, beside: Option<&Path>) -> PathBuf {
        let dir = Path::new(crate::config::SECRETS_DIR);
        if let Ok(name) = path.strip_prefix(dir)
            && let Some((_, file)) = self.secrets.iter().find(|(n, _)| Path::new(n) == name)
        {
            return file.clone();
        }
        if beside.is_some_and(|dir| path.starts_with(dir)) {
            return path.to_path_buf();
        }
        match path.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => path.to_path_buf(),
        }
    }
}

fn config_check(
    settings: &Settings,
    env: &Env,
    file: Option<PathBuf>,
    kubelet: Kubelet,
    files: Option<Files>,
) -> Result<(), Error> {
    let config = config_of(settings, env, file)?;
    print(&describe(&config))?;
    // Each secret file a rule names, read as a mint would read it (its owner and mode
    // checked): a missing or unreadable one fails the pull, so it fails the check.
    if let Some(files) = files {
        let beside = match &config.origin {
            Origin::File(path) => std::path::absolute(path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
            Origin::Builtin => None,
        };
        let mut report = String::new();
        let mut faults = 0;
        for rule in &config.rules {
            for (key, path) in rule.source.files() {
                if let Err(e) =
                    crate::secret_file::read(&files.at(&path, beside.as_deref()), env.uid())
                {
                    let source = rule.source.name();
                    report.push_str(&format!(
                        "error: rule {} ({source}): {key}: {e}\n",
                        rule.number
                    ));
                    faults += 1;
                }
            }
        }
        if faults > 0 {
            print(&report)?;
            return Err(Error::Files(faults));
        }
    }
    let version = kubelet.version.unwrap_or(KubeletVersion::NEWEST);
    match kubelet.config {
        None => Ok(()),
        Some(path) => check_kubelet(&config, &path, kubelet.bin_dir.as_deref(), version),
    }
}

fn match_images(settings: &Settings, env: &Env, file: Option<PathBuf>) -> Result<(), Error> {
    let config = config_of(settings, env, file)?;
    let mut patterns: Vec<String> = Vec::new();
    for p in config.rules.iter().flat_map(|r| &r.patterns) {
        let p = p.to_string();
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    print(
        &patterns
            .iter()
            .map(|p| format!("{p}\n"))
            .collect::<String>(),
    )
}

/// The cache the settings and config name, opened for a `cache` command.
fn cache_for_command(settings: &Settings, env: &Env) -> Result<(Cache, PathBuf), Error> {
    let config = Config::load(settings.config.as_deref(), env.uid())?;
    let dir = settings
        .cache_dir(config.cache.dir.as_deref(), env)
        .ok_or_else(|| Error::CacheIo("no cache dir (HOME is not set)".into()))?;
    let cache = Cache::open(&dir, env.uid()).map_err(Error::Cache)?;
    Ok((cache, dir))
}

fn cache_list(settings: &Settings, env: &Env) -> Result<(), Error> {
    let (cache, dir) = cache_for_command(settings, env)?;
    print(&list(&cache).map_err(|e| Error::CacheIo(format!("{}: {e}", dir.display())))?)
}

fn cache_purge(
    settings: &Settings,
    env: &Env,
    registry: Option<String>,
    expired: bool,
) -> Result<(), Error> {
    let (cache, dir) = cache_for_command(settings, env)?;
    let io = |e: std::io::Error| Error::CacheIo(format!("{}: {e}", dir.display()));
    if expired {
        let now = env.now();
        let n = cache
            .remove_expired(|e| e.is_removable(now), None)
            .map_err(io)?;
        print(&format!(
            "removed {n} expired entries from {}\n",
            dir.display()
        ))
    } else {
        // Docker Hub's other names (index.docker.io, registry-1.docker.io) are one
        // registry, whose entries are kept under docker.io: purge those, and say so.
        let hub = crate::image::DOCKER_HUB;
        let (registry, note) = match registry {
            Some(r) if crate::image::is_docker_hub(&r.to_ascii_lowercase()) && r != hub => (
                Some(hub.to_string()),
                format!(" ({r} is Docker Hub, whose entries live under {hub})"),
            ),
            other => (other, String::new()),
        };
        let n = cache.purge(registry.as_deref()).map_err(io)?;
        print(&format!(
            "removed {n} entries from {}{note}\n",
            dir.display()
        ))
    }
}

fn doctor(
    settings: &Settings,
    env: &Env,
    images: Vec<String>,
    no_cache: bool,
    root: &Path,
    kubelet_version: Option<KubeletVersion>,
) -> Result<(), Error> {
    let explicit = settings.config.clone().or_else(|| {
        let under = root.join(DEFAULT_CONFIG_PATH.trim_start_matches('/'));
        (root != Path::new("/") && under.exists()).then_some(under)
    });
    let config = if explicit.is_none() && root != Path::new("/") {
        Ok(Config::builtin())
    } else {
        Config::load(explicit.as_deref(), env.uid())
    };
    let configured = config.as_ref().ok().and_then(|c| c.cache.dir.as_deref());
    let cache_dir = settings.cache_dir(configured, env);
    let env = &env.clone().with_root(root.to_path_buf());
    let report = crate::doctor::Doctor {
        env,
        config,
        cache_dir,
        no_cache,
        images,
        kubelet_version,
    }
    .run();
    print(
        &report
            .lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )?;
    if report.failures > 0 {
        return Err(Error::Doctor(report.failures));
    }
    Ok(())
}

fn kubelet_config(
    settings: &Settings,
    env: &Env,
    file: Option<PathBuf>,
    merge: Option<PathBuf>,
    drop: crate::kubelet::Drop,
    kubelet_version: Option<KubeletVersion>,
) -> Result<(), Error> {
    let config = config_of(settings, env, file)?;
    let version = kubelet_version.unwrap_or(KubeletVersion::NEWEST);
    match merge {
        None => print(&crate::kubelet::generate(&config, version).map_err(Error::KubeletVersion)?),
        Some(path) => {
            let bad = |why: String| Error::Merge(format!("{}: {why}", path.display()));
            // Checked first as the kubelet of `version` reads it, so that what is wrong is
            // told as `config check --kubelet` tells it: merging into a file that kubelet
            // refuses would only carry the fault along.
            let (_, findings) = crate::kubelet::load(&path, version);
            if let Some(f) = findings.iter().find(|f| f.severity == Severity::Error) {
                return Err(Error::Merge(f.text()));
            }
            // Bounded and never blocking: a FIFO or /dev/zero is refused.
            let text = crate::kubelet::read_config(&path).map_err(|e| bad(e.to_string()))?;
            let json = path.extension().is_some_and(|e| e == "json");
            let merged = crate::kubelet::merge(&config, &text, json, version, drop).map_err(
                |e| match e {
                    MergeError::Generate(e) => Error::KubeletVersion(e),
                    e @ MergeError::Unreadable { .. } => bad(e.to_string()),
                },
            )?;
            print(&merged)
        }
    }
}

/// Reads a request and answers it within the config's deadline; only a complete answer
/// reaches stdout, after the deadline is disarmed.
fn serve(
    config: Config,
    env: Env,
    cache: Option<Cache>,
    request: impl FnOnce(&Env) -> Result<Request, Error>,
) -> Result<(), Error> {
    let (armed, left) = deadline::arm_within(config.deadline);
    let deadline = Instant::now() + left;
    let req = request(&env)?;
    let out = app::answer(&req, &config, &env, cache.as_ref(), deadline)?.encode();
    drop(armed);
    print(&out)
}

/// A cache dir that cannot be used means answering without a cache, never a failed request.
fn open_cache(settings: &Settings, config: &Config, env: &Env) -> Option<Cache> {
    let dir = settings.cache_dir(config.cache.dir.as_deref(), env)?;
    Cache::open(&dir, env.uid())
        .inspect_err(|e| tracing::warn!("{e}; answering without a cache"))
        .ok()
}

fn list(cache: &Cache) -> std::io::Result<String> {
    let mut out = String::new();
    for (key, entry) in cache.entries()? {
        match entry {
            Ok(e) => out.push_str(&format!(
                "{key}  {}  {}  refresh {}  expires {}\n",
                e.mint_host,
                e.source,
                humantime::format_rfc3339_seconds(e.refresh_at),
                humantime::format_rfc3339_seconds(e.expires_at)
            )),
            Err(why) => out.push_str(&format!("{key}  unreadable: {why}\n")),
        }
    }
    Ok(out)
}

/// The kubelet config's findings, one per line, after the pullcred config's description;
/// any error fails the check.
fn check_kubelet(
    config: &Config,
    path: &Path,
    bin_dir: Option<&Path>,
    version: KubeletVersion,
) -> Result<(), Error> {
    use crate::kubelet;
    let (providers, mut findings) = kubelet::load(path, version);
    if let Some(dir) = bin_dir {
        findings.extend(kubelet::check_bin_dir(&providers, dir));
    }
    let config_file = match &config.origin {
        Origin::File(f) => f.clone(),
        Origin::Builtin => PathBuf::from(DEFAULT_CONFIG_PATH),
    };
    findings.extend(kubelet::cross_check(&providers, config, &config_file));
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut report = format!(
        "kubelet config {}: {} provider(s), {errors} error(s), {} warning(s)\n",
        path.display(),
        providers.len(),
        findings.len() - errors
    );
    for f in &findings {
        report.push_str(&format!("{f}\n"));
    }
    print(&report)?;
    if errors > 0 {
        return Err(Error::KubeletConfig(errors));
    }
    Ok(())
}

fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Output(e.kind()))
}

fn describe(config: &Config) -> String {
    let mut out = match &config.origin {
        Origin::File(path) => format!("config {}: valid\n", path.display()),
        Origin::Builtin => format!("no config at {DEFAULT_CONFIG_PATH}: built-in rules\n"),
    };
    out.push_str(&format!(
        "deadline: {}\n",
        humantime::format_duration(config.deadline)
    ));
    if config.rules.is_empty() {
        out.push_str("no rules: every image is answered with no credentials\n");
    }
    for rule in &config.rules {
        // An endpoint in the config may carry a secret in its query (`?api-key=`).
        out.push_str(&crate::logging::redact_urls(&rule.to_string()));
        out.push('\n');
    }
    for warning in config.warnings() {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}
