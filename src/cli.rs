//! The command line: plugin mode (what the kubelet runs) and the operators' subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cache::Cache;
use crate::config::{Config, DEFAULT_CONFIG_PATH, Origin};
use crate::env::Env;
use crate::error::Error;
use crate::protocol::{self, ApiVersion, Request};
use crate::{app, deadline};

/// A kubelet image credential provider: ECR and ECR Public tokens, Artifact Registry and GCR
/// tokens, ACR refresh tokens, static credentials from root-only files, and docker config
/// credentials and helpers, with the node's identity or each workload's, from one binary,
/// cached on the node.
///
/// Without a subcommand it is the plugin the kubelet execs: a CredentialProviderRequest on
/// stdin, a CredentialProviderResponse on stdout.
#[derive(Parser, Debug)]
#[command(name = "pullcred", version, about)]
pub struct Cli {
    /// Config file [default: $PULLCRED_CONFIG, else /etc/pullcred/config.toml, else the
    /// built-in rules]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Cache dir [default: $PULLCRED_CACHE_DIR, else [cache] dir, else /run/pullcred for
    /// root, else the user's cache dir]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug); or set PULLCRED_LOG to a level
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the response the kubelet would get for IMAGE
    Get {
        image: String,
        /// apiVersion of the request to answer
        #[arg(long, value_enum, default_value_t = Api::V1)]
        api_version: Api,
    },
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect or empty the credential cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Check everything between the kubelet and a pull on this node, and answer IMAGEs as
    /// the kubelet would be (minting for real)
    Doctor {
        /// Images to answer [default: one per rule without wildcards]
        images: Vec<String>,
        /// Answer without reading or writing the cache
        #[arg(long)]
        no_cache: bool,
        /// Read the node's files under this root instead of / (a chroot, a test's tree)
        #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
        root: PathBuf,
        /// The Kubernetes version of the node's kubelet [default: what its binary says]
        #[arg(long, value_name = "X.Y", value_parser = crate::kubelet::KubeletVersion::parse)]
        kubelet_version: Option<crate::kubelet::KubeletVersion>,
    },
    /// Print a kubelet CredentialProviderConfig routing exactly what the rules serve
    KubeletConfig {
        /// Config file [default: --config, else /etc/pullcred/config.toml, else the built-in rules]
        file: Option<PathBuf>,
        /// An existing CredentialProviderConfig to merge into: its other providers are kept,
        /// its pullcred providers replaced (JSON stays JSON)
        #[arg(long, value_name = "FILE")]
        merge: Option<PathBuf>,
        /// With --merge: leave out each other provider whose every matchImages entry
        /// pullcred's providers route too (the kubelet would exec both for those pulls)
        #[arg(long, requires = "merge")]
        drop_covered: bool,
        /// The Kubernetes version of the node's kubelet (1.26 or later): only the fields it
        /// has are written [default: the newest pullcred knows]
        #[arg(long, value_name = "X.Y", value_parser = crate::kubelet::KubeletVersion::parse)]
        kubelet_version: Option<crate::kubelet::KubeletVersion>,
    },
    /// Print the version
    Version,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// List cached entries: key, registry, source, refresh and expiry times (never the credential)
    List,
    /// Remove cached entries, all or those of one registry; or, with --expired, only those
    /// that have expired (and lock files left without an entry)
    Purge {
        /// Only entries for this registry host
        #[arg(long, value_name = "HOST")]
        registry: Option<String>,
        /// Only entries that would not be served even when minting fails, each under its
        /// lock; a key being minted is left alone
        #[arg(long, conflicts_with = "registry")]
        expired: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate a config and print its rules in the order they are tried; with --kubelet,
    /// also the kubelet's CredentialProviderConfig and how it routes to these rules
    Check {
        /// Config file [default: --config, else /etc/pullcred/config.toml]
        file: Option<PathBuf>,
        /// The kubelet's CredentialProviderConfig: a file, or a directory of *.yaml, *.yml
        /// and *.json files merged in name order
        #[arg(long, value_name = "FILE|DIR")]
        kubelet: Option<PathBuf>,
        /// The kubelet's credential-provider bin dir: each provider's binary must be there
        #[arg(long, value_name = "DIR", requires = "kubelet")]
        bin_dir: Option<PathBuf>,
        /// The Kubernetes version of the kubelet that reads it (1.26 or later): its fields
        /// are checked as that version has them [default: the newest pullcred knows]
        #[arg(long, value_name = "X.Y", requires = "kubelet", value_parser = crate::kubelet::KubeletVersion::parse)]
        kubelet_version: Option<crate::kubelet::KubeletVersion>,
    },
    /// Print the kubelet `matchImages` the config's rules serve, one per line
    MatchImages {
        /// Config file [default: --config, else /etc/pullcred/config.toml, else the built-in rules]
        file: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Api {
    V1,
    V1beta1,
    V1alpha1,
}

impl From<Api> for ApiVersion {
    fn from(a: Api) -> Self {
        match a {
            Api::V1 => ApiVersion::V1,
            Api::V1beta1 => ApiVersion::V1Beta1,
            Api::V1alpha1 => ApiVersion::V1Alpha1,
        }
    }
}

impl Cli {
    /// This process's command line, then `PULLCRED_CONFIG` for `--config` when not given (see
    /// `settings`; an empty value is unset, as everywhere in pullcred). Plugin mode
    /// without arguments, which is how the kubelet runs us, skips clap: building its whole
    /// command tree costs about as much as the rest of a request.
    pub fn from_process(env: &Env) -> Self {
        let mut cli = if std::env::args_os().len() <= 1 {
            Cli {
                config: None,
                cache_dir: None,
                verbose: 0,
                command: None,
            }
        } else {
            Cli::parse()
        };
        cli.config = crate::settings::config_path(cli.config, env);
        cli
    }

    pub fn run(self, env: Env) -> Result<(), Error> {
        crate::logging::init(self.verbose, env.var("PULLCRED_LOG"));
        match self.command {
            None => {
                let config = Config::load(self.config.as_deref(), env.uid())?;
                let cache = open_cache(self.cache_dir, &config, &env);
                serve(config, env, cache, |_| {
                    protocol::read_request(std::io::stdin().lock()).map_err(Error::from)
                })
            }
            Some(Command::Get { image, api_version }) => {
                let config = Config::load(self.config.as_deref(), env.uid())?;
                let cache = open_cache(self.cache_dir, &config, &env);
                serve(config, env, cache, move |_| {
                    Ok(Request {
                        api_version: api_version.into(),
                        image,
                        service_account_token: None,
                        service_account_annotations: Default::default(),
                    })
                })
            }
            Some(Command::Config(ConfigCommand::Check {
                file,
                kubelet,
                bin_dir,
                kubelet_version,
            })) => {
                let config = Config::load(file.as_deref().or(self.config.as_deref()), env.uid())?;
                print(&describe(&config))?;
                let version = kubelet_version.unwrap_or(crate::kubelet::KubeletVersion::NEWEST);
                match kubelet {
                    None => Ok(()),
                    Some(path) => check_kubelet(&config, &path, bin_dir.as_deref(), version),
                }
            }
            Some(Command::Doctor {
                images,
                no_cache,
                root,
                kubelet_version,
            }) => {
                let explicit = self.config.clone().or_else(|| {
                    let under = root.join(DEFAULT_CONFIG_PATH.trim_start_matches('/'));
                    (root != Path::new("/") && under.exists()).then_some(under)
                });
                let config = if explicit.is_none() && root != Path::new("/") {
                    Ok(Config::builtin())
                } else {
                    Config::load(explicit.as_deref(), env.uid())
                        .map_err(|e| crate::logging::error_chain(&e))
                };
                let cache_dir = match &config {
                    Ok(c) => cache_dir(self.cache_dir, c, &env),
                    Err(_) => crate::settings::cache_dir(self.cache_dir, None, &env),
                };
                let report = crate::doctor::Doctor {
                    root: &root,
                    env: &env,
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
            Some(Command::KubeletConfig {
                file,
                merge,
                drop_covered,
                kubelet_version,
            }) => {
                let config = Config::load(file.as_deref().or(self.config.as_deref()), env.uid())?;
                let version = kubelet_version.unwrap_or(crate::kubelet::KubeletVersion::NEWEST);
                match merge {
                    None => print(
                        &crate::kubelet::generate(&config, version)
                            .map_err(Error::KubeletVersion)?,
                    ),
                    Some(path) => {
                        let bad = |why: String| Error::Merge(format!("{}: {why}", path.display()));
                        // Bounded and never blocking: a FIFO or /dev/zero is refused.
                        let text = crate::kubelet::read_config(&path).map_err(bad)?;
                        let json = path.extension().is_some_and(|e| e == "json");
                        print(
                            &crate::kubelet::merge(&config, &text, json, version, drop_covered)
                                .map_err(bad)?,
                        )
                    }
                }
            }
            Some(Command::Config(ConfigCommand::MatchImages { file })) => {
                let config = Config::load(file.as_deref().or(self.config.as_deref()), env.uid())?;
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
            Some(Command::Cache(command)) => {
                let config = Config::load(self.config.as_deref(), env.uid())?;
                let dir = cache_dir(self.cache_dir, &config, &env)
                    .ok_or_else(|| Error::CacheIo("no cache dir (HOME is not set)".into()))?;
                let cache = Cache::open(&dir, env.uid()).map_err(Error::Cache)?;
                let io = |e: std::io::Error| Error::CacheIo(format!("{}: {e}", dir.display()));
                match command {
                    CacheCommand::List => print(&list(&cache).map_err(io)?),
                    CacheCommand::Purge { expired: true, .. } => {
                        let now = env.now();
                        let n = cache
                            .remove_expired(|e| e.is_removable(now), None)
                            .map_err(io)?;
                        print(&format!(
                            "removed {n} expired entries from {}\n",
                            dir.display()
                        ))
                    }
                    CacheCommand::Purge { registry, .. } => {
                        let n = cache.purge(registry.as_deref()).map_err(io)?;
                        print(&format!("removed {n} entries from {}\n", dir.display()))
                    }
                }
            }
            Some(Command::Version) => print(&format!(
                "pullcred {0} (pullcred and pullcred-mint {0})\n",
                env!("CARGO_PKG_VERSION")
            )),
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

/// The cache dir for `config` (see `settings::cache_dir`).
fn cache_dir(flag: Option<PathBuf>, config: &Config, env: &Env) -> Option<PathBuf> {
    crate::settings::cache_dir(flag, config.cache.dir.as_deref(), env)
}

/// A cache dir that cannot be used means answering without a cache, never a failed request.
fn open_cache(flag: Option<PathBuf>, config: &Config, env: &Env) -> Option<Cache> {
    let dir = cache_dir(flag, config, env)?;
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
    version: crate::kubelet::KubeletVersion,
) -> Result<(), Error> {
    use crate::kubelet::{self, Severity};
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
