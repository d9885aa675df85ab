//! The command line as both binaries read it: lexopt's tokens into [`LowArgs`], checked but
//! not resolved (no variable, no file is looked at here), cheap enough for the front on
//! every pull. `settings` resolves what the arguments leave open; `cli` runs the command.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::kubelet::KubeletVersion;
use crate::protocol::ApiVersion;

/// The arguments as given.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LowArgs {
    pub config: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// `-v` once per step: info, then debug.
    pub verbose: u8,
    pub command: Command,
}

/// What to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Command {
    /// No command: the plugin the kubelet execs (a request on stdin).
    #[default]
    Plugin,
    Get {
        image: String,
        api_version: ApiVersion,
    },
    ConfigCheck {
        file: Option<PathBuf>,
        kubelet: Option<PathBuf>,
        bin_dir: Option<PathBuf>,
        kubelet_version: Option<KubeletVersion>,
        /// The config alone: the secret files its rules name are not read.
        no_files: bool,
        /// Where the node's files are: the secret files are read under it.
        root: PathBuf,
        /// Files to read in place of `SECRETS_DIR/NAME`: secrets not installed yet.
        secrets: Vec<(String, PathBuf)>,
    },
    ConfigMatchImages {
        file: Option<PathBuf>,
    },
    CacheList,
    CachePurge {
        registry: Option<String>,
        expired: bool,
    },
    Doctor {
        images: Vec<String>,
        no_cache: bool,
        root: PathBuf,
        kubelet_version: Option<KubeletVersion>,
    },
    KubeletConfig {
        file: Option<PathBuf>,
        merge: Option<PathBuf>,
        /// With `merge`: which other providers to leave out.
        drop: crate::kubelet::Drop,
        kubelet_version: Option<KubeletVersion>,
    },
    Version,
    /// Run as a docker credential helper (`docker-credential-pullcred OPERATION`).
    Helper(HelperOp),
    /// `--help`: the help of the command named, to print as it is.
    Help(String),
}

/// A command line that is not one of pullcred's: what is wrong, and the usage line of the
/// command it was for. Told in one line; exit code 2.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}; usage: {usage} (more: {more})")]
pub struct UsageError {
    message: String,
    usage: String,
    /// The help to read: the command's.
    more: String,
}

/// The commands: name, usage (after the program's name), what it does, and its options.
/// The help (`--help`, and docs/cli.md, made from it) and which options each command takes
/// are both read from here.
struct Topic {
    name: &'static str,
    usage: &'static str,
    /// What comes before the options in the help.
    about: &'static str,
    /// The heading of the options in the help.
    options_heading: &'static str,
    options: &'static [Opt],
    /// Where the options belong to one subcommand only (`cache purge`): its name.
    options_of: Option<&'static str>,
}

/// An option: its long spelling (as `seen.given` records it), a short one, its value's name,
/// its help (lines after the first continue it), and the option it is meaningless without.
/// A hidden one is taken but not shown.
struct Opt {
    long: &'static str,
    short: Option<char>,
    value: Option<&'static str>,
    help: &'static str,
    needs: Option<&'static str>,
    hidden: bool,
}

impl Opt {
    const fn new(long: &'static str, value: Option<&'static str>, help: &'static str) -> Self {
        Opt {
            long,
            short: None,
            value,
            help,
            needs: None,
            hidden: false,
        }
    }

    const fn short(self, short: char) -> Self {
        Opt {
            short: Some(short),
            ..self
        }
    }

    const fn needs(self, other: &'static str) -> Self {
        Opt {
            needs: Some(other),
            ..self
        }
    }

    const fn hidden(self) -> Self {
        Opt {
            hidden: true,
            ..self
        }
    }

    /// How the help names it: `--kubelet`, `-v, --verbose`.
    fn spelling(&self) -> String {
        match self.short {
            Some(c) => format!("-{c}, {}", self.long),
            None => self.long.to_string(),
        }
    }
}

/// Where an option's help starts in the help text.
const HELP_COLUMN: usize = 25;

impl Topic {
    /// The help text: what it does, then its options, each help line at `HELP_COLUMN`.
    fn help(&self) -> String {
        let mut out = String::from(self.about);
        let shown: Vec<&Opt> = self.options.iter().filter(|o| !o.hidden).collect();
        if !shown.is_empty() {
            out.push_str(&format!("\n{}:\n", self.options_heading));
        }
        for o in shown {
            let head = match o.value {
                Some(v) => format!("  {} {v}", o.spelling()),
                None => format!("  {}", o.spelling()),
            };
            let mut lines = o.help.lines();
            let first = lines.next().unwrap_or("");
            if head.len() + 2 > HELP_COLUMN {
                out.push_str(&format!("{head}\n{:HELP_COLUMN$}{first}\n", ""));
            } else {
                out.push_str(&format!("{head:HELP_COLUMN$}{first}\n"));
            }
            for line in lines {
                out.push_str(&format!("{:HELP_COLUMN$}{line}\n", ""));
            }
        }
        out
    }
}

const TOP: Topic = Topic {
    name: "",
    usage: "[OPTIONS] [COMMAND]",
    about:
        "A kubelet image credential provider: ECR and ECR Public tokens, Artifact Registry and GCR
tokens, ACR refresh tokens, static credentials from root-only files, and docker config
credentials and helpers, with the node's identity or each workload's, from one binary,
cached on the node.

Without a command it is the plugin the kubelet execs: a CredentialProviderRequest on
stdin, a CredentialProviderResponse on stdout.

Commands:
  get IMAGE        Print the response the kubelet would get for IMAGE
  config check     Validate a config and print its rules in the order they are tried
  config match-images
                   Print the kubelet matchImages the config's rules serve
  cache list       List cached entries (never the credential)
  cache purge      Remove cached entries
  doctor [IMAGE…]  Check everything between the kubelet and a pull on this node
  kubelet-config   Print a kubelet CredentialProviderConfig routing what the rules serve
  version          Print the version
",
    options_heading: "Options (for every command)",
    options: &[
        Opt::new(
            "--config",
            Some("FILE"),
            "Config file [default: $PULLCRED_CONFIG, else
/etc/pullcred/config.toml, else the built-in rules]",
        ),
        Opt::new(
            "--cache-dir",
            Some("DIR"),
            "Cache dir [default: $PULLCRED_CACHE_DIR, else [cache] dir,
else /run/pullcred for root, else the user's cache dir]",
        ),
        Opt::new(
            "--verbose",
            None,
            "More log output on stderr (-v info, -vv debug); or set
PULLCRED_LOG",
        )
        .short('v'),
        Opt::new("--help", None, "Print help (of a command: COMMAND --help)").short('h'),
        Opt::new("--version", None, "Print the version").short('V'),
    ],
    options_of: None,
};

/// A command's options: a topic with the usual heading.
const OPTIONS: &str = "Options";

const GET: Topic = Topic {
    name: "get",
    usage: "get [OPTIONS] IMAGE",
    about: "Print the response the kubelet would get for IMAGE.

Arguments:
  IMAGE            an image reference as a pod names it: nginx, registry.example.com/team/app:1,
                   host:5000/app@sha256:… (Docker Hub's short names are expanded as the kubelet does)
",
    options_heading: OPTIONS,
    options: &[Opt::new(
        "--api-version",
        Some("V"),
        "apiVersion of the request to answer: v1 (default), v1beta1,
v1alpha1",
    )],
    options_of: None,
};

const CONFIG: Topic = Topic {
    name: "config",
    usage: "config check|match-images [OPTIONS] [FILE]",
    about: "Inspect a config.

Commands:
  check [FILE]         Validate a config and print its rules in the order they are tried;
                       with --kubelet, also the kubelet's CredentialProviderConfig and how
                       it routes to these rules
  match-images [FILE]  Print the kubelet matchImages the config's rules serve, one per line

FILE defaults to --config, else $PULLCRED_CONFIG, else /etc/pullcred/config.toml, else
the built-in rules.
",
    options_heading: OPTIONS,
    options: &[],
    options_of: None,
};

/// `--kubelet-version`, as the commands that take it say it.
const KUBELET_VERSION_HELP: &str = "The Kubernetes version of the node's kubelet (1.26 or
later): only what it has is written or accepted [default: the
newest pullcred knows]";

const CONFIG_CHECK: Topic = Topic {
    name: "config check",
    usage: "config check [OPTIONS] [FILE]",
    about: "Validate a config (FILE, else --config, else $PULLCRED_CONFIG, else
/etc/pullcred/config.toml, else the built-in rules), read each secret file its rules name
as a mint would (a missing or unsafe one is an error), and print its rules in the order
they are tried.
",
    options_heading: OPTIONS,
    options: &[
        Opt::new(
            "--kubelet",
            Some("FILE|DIR"),
            "The kubelet's CredentialProviderConfig: a file, or a
directory of *.yaml, *.yml and *.json files merged in name
order; checked as that kubelet reads it, and against the rules",
        ),
        Opt::new(
            "--bin-dir",
            Some("DIR"),
            "With --kubelet: the kubelet's credential-provider bin dir
(each provider's binary must be there)",
        )
        .needs("--kubelet"),
        Opt::new("--kubelet-version", Some("X.Y"), KUBELET_VERSION_HELP).needs("--kubelet"),
        Opt::new(
            "--no-files",
            None,
            "Check the config alone: do not read the secret files its
rules name (for examples and image builds, where they are
not there yet)",
        ),
        Opt::new(
            "--root",
            Some("DIR"),
            "Read the secret files under DIR, the root of the node they
are for (an image build's or an installer's target)
[default: /]",
        ),
        Opt::new(
            "--secret",
            Some("NAME=FILE"),
            "Read FILE in place of /etc/pullcred/secrets/NAME: a secret
about to be installed there (install.sh --secret); may be
repeated",
        ),
    ],
    options_of: None,
};

const CONFIG_MATCH_IMAGES: Topic = Topic {
    name: "config match-images",
    usage: "config match-images [FILE]",
    about: "Print the kubelet matchImages the config's rules serve, one per line (FILE, else
--config, else $PULLCRED_CONFIG, else /etc/pullcred/config.toml, else the built-in rules).
",
    options_heading: OPTIONS,
    options: &[],
    options_of: None,
};

const CACHE: Topic = Topic {
    name: "cache",
    usage: "cache list|purge [OPTIONS]",
    about: "Inspect or empty the credential cache.

Commands:
  list   List cached entries: key, registry, source, refresh and expiry times (never the
         credential)
  purge  Remove cached entries, all or those of one registry; or, with --expired, only
         those that have expired (and lock files left without an entry)
",
    options_heading: "Options of purge",
    options: &[
        Opt::new(
            "--registry",
            Some("HOST"),
            "Only entries for this registry host (index.docker.io and
registry-1.docker.io are docker.io's)",
        ),
        Opt::new(
            "--expired",
            None,
            "Only entries that would not be served even when minting
fails, each under its lock (not with --registry)",
        ),
    ],
    options_of: Some("purge"),
};

/// `doctor --root DIR` is taken but not shown: the tests' fake node trees (the kubelet's
/// files and `/proc`) are read under it, while the answers it mints read the config's files
/// where they are, so it is no tool for an operator's image or mount.
const DOCTOR: Topic = Topic {
    name: "doctor",
    usage: "doctor [OPTIONS] [IMAGE…]",
    about: "Check everything between the kubelet and a pull on this node, and answer each IMAGE as
the kubelet would be (minting for real) [default: one image per rule without wildcards].
One line per check: ok, skip (not tried, and why), warn or FAIL; exit 1 on any FAIL.
",
    options_heading: OPTIONS,
    options: &[
        Opt::new(
            "--no-cache",
            None,
            "Answer without reading or writing the cache",
        ),
        Opt::new(
            "--kubelet-version",
            Some("X.Y"),
            "The Kubernetes version of the node's kubelet [default: what
its binary says]",
        ),
        Opt::new("--root", Some("DIR"), "").hidden(),
    ],
    options_of: None,
};

const KUBELET_CONFIG: Topic = Topic {
    name: "kubelet-config",
    usage: "kubelet-config [OPTIONS] [FILE]",
    about: "Print a kubelet CredentialProviderConfig routing exactly what the rules of FILE (else
--config, else $PULLCRED_CONFIG, else /etc/pullcred/config.toml, else the built-in rules)
serve.
",
    options_heading: OPTIONS,
    options: &[
        Opt::new(
            "--merge",
            Some("FILE"),
            "An existing CredentialProviderConfig to merge into: its
other providers are kept, its pullcred providers replaced
(keeping the env and args set on them); JSON stays JSON",
        ),
        Opt::new(
            "--drop-covered",
            None,
            "With --merge: leave out each other provider whose every
matchImages entry pullcred's providers route too",
        )
        .needs("--merge"),
        Opt::new(
            "--drop-overlapping",
            None,
            "With --merge: leave out each other provider with any
matchImages entry that overlaps one of pullcred's, so that
pullcred alone answers for its images (needed when a rule
uses per-workload identity: another provider would give
every pod the node's)",
        )
        .needs("--merge"),
        Opt::new("--kubelet-version", Some("X.Y"), KUBELET_VERSION_HELP),
    ],
    options_of: None,
};

const VERSION: Topic = Topic {
    name: "version",
    usage: "version",
    about: "Print the version.\n",
    options_heading: OPTIONS,
    options: &[],
    options_of: None,
};

/// Every topic, for the options they take and the help pages.
const TOPICS: [&Topic; 9] = [
    &TOP,
    &GET,
    &CONFIG,
    &CONFIG_CHECK,
    &CONFIG_MATCH_IMAGES,
    &CACHE,
    &DOCTOR,
    &KUBELET_CONFIG,
    &VERSION,
];

/// Options that take a value, and flags, as given anywhere on the line; sorted out per
/// command once the command is known.
#[derive(Default)]
struct Seen {
    api_version: Option<String>,
    kubelet: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    kubelet_version: Option<String>,
    merge: Option<PathBuf>,
    root: Option<PathBuf>,
    registry: Option<String>,
    drop_covered: bool,
    drop_overlapping: bool,
    no_cache: bool,
    no_files: bool,
    secrets: Vec<(String, PathBuf)>,
    expired: bool,
    help: bool,
    version: bool,
    /// Each option given, by its spelling, for "does not apply" errors.
    given: Vec<&'static str>,
}

/// `args` (without the program's name) as pullcred's command line; `program` is the name
/// the user ran, for usage lines and help.
/// The name docker and containers-auth exec a credential helper by: `docker-credential-`
/// and the name an auth file's `credHelpers` gives (`pullcred`).
pub const HELPER_PREFIX: &str = "docker-credential-";

/// What a docker credential helper is asked to do (its one argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperOp {
    /// A server URL on stdin; its credentials on stdout.
    Get,
    /// The servers it has credentials for.
    List,
    /// Refused: pullcred's rules are where credentials come from.
    Store,
    Erase,
    Version,
}

impl HelperOp {
    pub fn name(self) -> &'static str {
        match self {
            HelperOp::Get => "get",
            HelperOp::List => "list",
            HelperOp::Store => "store",
            HelperOp::Erase => "erase",
            HelperOp::Version => "version",
        }
    }
}

/// The helper protocol's command line: exactly one operation.
fn helper(program: &str, args: Vec<OsString>) -> Result<LowArgs, UsageError> {
    let ops = [
        HelperOp::Get,
        HelperOp::List,
        HelperOp::Store,
        HelperOp::Erase,
        HelperOp::Version,
    ];
    let op = match &args[..] {
        [one] => ops.into_iter().find(|op| one == op.name()),
        _ => None,
    };
    match op {
        Some(op) => Ok(LowArgs {
            command: Command::Helper(op),
            ..LowArgs::default()
        }),
        None => Err(UsageError {
            message: "expected one of get, list, store, erase, version".into(),
            usage: format!("{program} get|list|store|erase|version"),
            more: "pullcred --help".into(),
        }),
    }
}

pub fn parse(program: &str, args: Vec<OsString>) -> Result<LowArgs, UsageError> {
    use lexopt::prelude::*;
    if program.starts_with(HELPER_PREFIX) {
        return helper(program, args);
    }
    let mut low = LowArgs::default();
    let mut seen = Seen::default();
    let mut words: Vec<OsString> = Vec::new();
    let mut parser = lexopt::Parser::from_args(args);
    let fail = |message: String, topic: &Topic| UsageError {
        message,
        usage: format!("{program} {}", topic.usage),
        more: if topic.name.is_empty() {
            format!("{program} --help")
        } else {
            format!("{program} {} --help", topic.name)
        },
    };
    let bad = |e: lexopt::Error| fail(e.to_string(), &TOP);
    while let Some(arg) = parser.next().map_err(bad)? {
        let name = match &arg {
            Long(long) => format!("--{long}"),
            Short(c) => format!("-{c}"),
            Value(_) => String::new(),
        };
        // A command's option, wherever it is given (the globals are TOP's).
        if let Some(option) = TOPICS[1..]
            .iter()
            .flat_map(|t| t.options)
            .map(|o| o.long)
            .find(|o| *o == name)
        {
            seen.given.push(option);
        }
        // A value: present, not empty, and given once (a second would silently win).
        let value = |p: &mut lexopt::Parser, already: bool| -> Result<OsString, UsageError> {
            if already {
                return Err(fail(format!("{name} is given twice"), &TOP));
            }
            // `--opt=value` takes any value; `--opt value` not another option (`--config -v`
            // is a forgotten value, not a config file named -v).
            let v = match p.optional_value() {
                Some(v) => v,
                None => {
                    let v = p.value().map_err(bad)?;
                    if v.len() > 1 && v.as_encoded_bytes().starts_with(b"-") {
                        return Err(fail(
                            format!("{name} needs a value, not the option {v:?}"),
                            &TOP,
                        ));
                    }
                    v
                }
            };
            if v.is_empty() {
                return Err(fail(format!("{name} needs a value"), &TOP));
            }
            Ok(v)
        };
        let path = |p: &mut lexopt::Parser, already| value(p, already).map(PathBuf::from);
        let text = |p: &mut lexopt::Parser, already| value(p, already)?.string().map_err(bad);
        match arg {
            Long("config") => low.config = Some(path(&mut parser, low.config.is_some())?),
            Long("cache-dir") => {
                low.cache_dir = Some(path(&mut parser, low.cache_dir.is_some())?);
            }
            Short('v') | Long("verbose") => low.verbose = low.verbose.saturating_add(1),
            Short('h') | Long("help") => seen.help = true,
            Short('V') | Long("version") => seen.version = true,
            Long("api-version") => {
                seen.api_version = Some(text(&mut parser, seen.api_version.is_some())?);
            }
            Long("kubelet") => seen.kubelet = Some(path(&mut parser, seen.kubelet.is_some())?),
            Long("bin-dir") => seen.bin_dir = Some(path(&mut parser, seen.bin_dir.is_some())?),
            Long("kubelet-version") => {
                seen.kubelet_version = Some(text(&mut parser, seen.kubelet_version.is_some())?);
            }
            Long("merge") => seen.merge = Some(path(&mut parser, seen.merge.is_some())?),
            Long("root") => seen.root = Some(path(&mut parser, seen.root.is_some())?),
            Long("registry") => {
                seen.registry = Some(text(&mut parser, seen.registry.is_some())?);
            }
            Long("drop-covered") => seen.drop_covered = true,
            Long("drop-overlapping") => seen.drop_overlapping = true,
            Long("no-cache") => seen.no_cache = true,
            Long("no-files") => seen.no_files = true,
            Long("secret") => {
                let v = value(&mut parser, false)?;
                let secret =
                    secret_operand(v).map_err(|why| fail(format!("--secret: {why}"), &TOP))?;
                seen.secrets.push(secret);
            }
            Long("expired") => seen.expired = true,
            Value(v) => words.push(v),
            _ => return Err(bad(arg.unexpected())),
        }
    }
    // `help` as a word (`help get`, `config help`) asks for the help of the rest.
    if let Some(i) = words.iter().position(|w| w == "help") {
        words.remove(i);
        seen.help = true;
    }
    let mut words = words.into_iter();
    let command_word = |words: &mut std::vec::IntoIter<OsString>| match words.next() {
        None => Ok(None),
        Some(w) => w
            .into_string()
            .map(Some)
            .map_err(|w| fail(format!("unknown command {w:?}"), &TOP)),
    };
    let first = command_word(&mut words)?;
    let (topic, second) = match first.as_deref() {
        None => (&TOP, None),
        Some("get") => (&GET, None),
        Some("config") => match command_word(&mut words)?.as_deref() {
            Some("check") => (&CONFIG_CHECK, None),
            Some("match-images") => (&CONFIG_MATCH_IMAGES, None),
            None if seen.help => (&CONFIG, None),
            None => return Err(fail("config needs a command".into(), &CONFIG)),
            Some(other) => {
                return Err(fail(format!("unknown command 'config {other}'"), &CONFIG));
            }
        },
        Some("cache") => match command_word(&mut words)?.as_deref() {
            Some("list") => (&CACHE, Some("list")),
            Some("purge") => (&CACHE, Some("purge")),
            None if seen.help => (&CACHE, None),
            None => return Err(fail("cache needs a command".into(), &CACHE)),
            Some(other) => {
                return Err(fail(format!("unknown command 'cache {other}'"), &CACHE));
            }
        },
        Some("doctor") => (&DOCTOR, None),
        Some("kubelet-config") => (&KUBELET_CONFIG, None),
        Some("version") => (&VERSION, None),
        Some(other) => return Err(fail(format!("unknown command '{other}'"), &TOP)),
    };
    if seen.help {
        low.command = Command::Help(help_text(program, topic));
        return Ok(low);
    }
    if seen.version {
        low.command = Command::Version;
        return Ok(low);
    }
    // Each option only where it applies: its topic's, or its subcommand's.
    let allowed: Vec<&str> = match topic.options_of {
        Some(of) if second != Some(of) => Vec::new(),
        _ => topic.options.iter().map(|o| o.long).collect(),
    };
    if let Some(o) = seen.given.iter().find(|o| !allowed.contains(o)) {
        let on = match (topic.name, second) {
            ("", _) => "the plugin".to_string(),
            (name, Some(sub)) => format!("'{name} {sub}'"),
            (name, None) => format!("'{name}'"),
        };
        return Err(fail(format!("{o} does not apply to {on}"), topic));
    }
    // Nor without the option it qualifies.
    if let Some(o) = seen.given.iter().find_map(|g| {
        let o = topic.options.iter().find(|o| o.long == *g)?;
        o.needs.filter(|n| !seen.given.contains(n)).map(|n| (g, n))
    }) {
        return Err(fail(format!("{} needs {}", o.0, o.1), topic));
    }
    let version = |v: &Option<String>| {
        v.as_deref()
            .map(KubeletVersion::parse)
            .transpose()
            .map_err(|why| fail(format!("--kubelet-version: {why}"), topic))
    };
    let rest: Vec<OsString> = words.collect();
    let unexpected = |w: &OsString| fail(format!("unexpected argument {w:?}"), topic);
    // A file operand: any bytes, as a path may hold.
    let at_most_one = |rest: Vec<OsString>| -> Result<Option<PathBuf>, UsageError> {
        match <[OsString; 1]>::try_from(rest) {
            Ok([one]) => Ok(Some(PathBuf::from(one))),
            Err(rest) if rest.is_empty() => Ok(None),
            Err(rest) => Err(unexpected(&rest[1])),
        }
    };
    // Image operands: text.
    let images = |rest: Vec<OsString>| -> Result<Vec<String>, UsageError> {
        rest.into_iter()
            .map(|w| {
                w.into_string()
                    .map_err(|w| fail(format!("image {w:?} is not UTF-8"), topic))
            })
            .collect()
    };
    low.command = match (topic.name, second) {
        ("", _) => match rest.first() {
            None => Command::Plugin,
            Some(w) => return Err(unexpected(w)),
        },
        ("get", _) => {
            let image = match <[String; 1]>::try_from(images(rest)?) {
                Ok([image]) => image,
                Err(rest) if rest.is_empty() => {
                    return Err(fail("get needs an IMAGE".into(), topic));
                }
                Err(rest) => {
                    return Err(fail(format!("unexpected argument {:?}", rest[1]), topic));
                }
            };
            let api_version = match seen.api_version.as_deref() {
                None | Some("v1") => ApiVersion::V1,
                Some("v1beta1") => ApiVersion::V1Beta1,
                Some("v1alpha1") => ApiVersion::V1Alpha1,
                Some(other) => {
                    return Err(fail(
                        format!("--api-version: {other:?} is not v1, v1beta1 or v1alpha1"),
                        topic,
                    ));
                }
            };
            Command::Get { image, api_version }
        }
        ("config check", _) => Command::ConfigCheck {
            file: at_most_one(rest)?,
            kubelet: seen.kubelet,
            bin_dir: seen.bin_dir,
            kubelet_version: version(&seen.kubelet_version)?,
            no_files: seen.no_files,
            root: seen.root.unwrap_or_else(|| PathBuf::from("/")),
            secrets: seen.secrets,
        },
        ("config match-images", _) => Command::ConfigMatchImages {
            file: at_most_one(rest)?,
        },
        ("cache", Some(sub)) => {
            if let Some(w) = rest.first() {
                return Err(unexpected(w));
            }
            if sub == "list" {
                Command::CacheList
            } else if seen.expired && seen.registry.is_some() {
                return Err(fail(
                    "--expired and --registry exclude each other".into(),
                    topic,
                ));
            } else {
                Command::CachePurge {
                    registry: seen.registry,
                    expired: seen.expired,
                }
            }
        }
        ("doctor", _) => Command::Doctor {
            images: images(rest)?,
            no_cache: seen.no_cache,
            root: seen.root.unwrap_or_else(|| PathBuf::from("/")),
            kubelet_version: version(&seen.kubelet_version)?,
        },
        ("kubelet-config", _) => {
            // Overlapping takes in covered: a provider all of whose entries pullcred routes
            // overlaps it.
            let drop = if seen.drop_overlapping {
                crate::kubelet::Drop::Overlapping
            } else if seen.drop_covered {
                crate::kubelet::Drop::Covered
            } else {
                crate::kubelet::Drop::Nothing
            };
            Command::KubeletConfig {
                file: at_most_one(rest)?,
                merge: seen.merge,
                drop,
                kubelet_version: version(&seen.kubelet_version)?,
            }
        }
        ("version", _) => match rest.first() {
            None => Command::Version,
            Some(w) => return Err(unexpected(w)),
        },
        _ => unreachable!("every topic is matched above"),
    };
    Ok(low)
}

/// `--secret NAME=FILE`: NAME a plain file name (letters, digits, `.`, `_`, `-`; not
/// starting with `.`), FILE any path.
fn secret_operand(v: OsString) -> Result<(String, PathBuf), String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = v.as_bytes();
    let Some(eq) = bytes.iter().position(|b| *b == b'=') else {
        return Err("not NAME=FILE".into());
    };
    let (name, file) = (&bytes[..eq], &bytes[eq + 1..]);
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"._-".contains(b);
    if name.is_empty() || name[0] == b'.' || !name.iter().all(plain) {
        return Err(format!(
            "{:?} is not a plain file name (letters, digits, . _ -, not starting with .)",
            String::from_utf8_lossy(name)
        ));
    }
    if file.is_empty() {
        return Err("no FILE after NAME=".into());
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        PathBuf::from(std::ffi::OsStr::from_bytes(file)),
    ))
}

/// A command's help, its usage line naming `program`.
fn help_text(program: &str, topic: &Topic) -> String {
    format!("{}\nUsage: {program} {}\n", topic.help(), topic.usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<LowArgs, UsageError> {
        parse("pullcred", words.iter().map(OsString::from).collect())
    }

    /// Each option is defined once, in its topic: the parser takes it on that command (and
    /// no other), and the help shows it unless it is hidden.
    #[test]
    fn every_option_is_taken_where_its_help_shows_it() {
        for topic in &TOPICS[1..] {
            let mut words: Vec<&str> = topic.name.split(' ').collect();
            if let Some(sub) = topic.options_of {
                words.push(sub);
            }
            for o in topic.options {
                let mut line = words.clone();
                line.push(o.long);
                if let Some(v) = o.value {
                    line.push(if o.long == "--kubelet-version" {
                        "1.33"
                    } else if o.long == "--secret" {
                        "n=f"
                    } else if o.long == "--api-version" {
                        "v1"
                    } else {
                        v
                    });
                }
                // What an option needs beside it.
                if let Some(other) = o.needs {
                    line.extend([other, "x"]);
                }
                if topic.name == "get" {
                    line.push("nginx");
                }
                assert!(
                    parse_words(&line).is_ok(),
                    "{line:?}: {:?}",
                    parse_words(&line)
                );
                let help = topic.help();
                assert_eq!(
                    help.contains(&format!("  {} ", o.spelling()))
                        || help.contains(&format!("  {}\n", o.spelling())),
                    !o.hidden,
                    "{}: {}",
                    topic.name,
                    o.long
                );
                // Not on the plugin.
                let own = &line[words.len()..words.len() + 1 + usize::from(o.value.is_some())];
                let e = parse_words(own).unwrap_err().to_string();
                assert!(e.contains("does not apply to the plugin"), "{own:?}: {e}");
            }
        }
    }

    #[test]
    fn each_command_and_its_options_anywhere_on_the_line() {
        assert_eq!(parse_words(&[]).unwrap(), LowArgs::default());
        let low = parse_words(&["--config", "/c", "get", "r.example.com/a", "-vv"]).unwrap();
        assert_eq!(low.config, Some("/c".into()));
        assert_eq!(low.verbose, 2);
        assert_eq!(
            low.command,
            Command::Get {
                image: "r.example.com/a".into(),
                api_version: ApiVersion::V1
            }
        );
        // A value given with `=` may start with a dash.
        assert_eq!(
            parse_words(&["--config=-c.toml"]).unwrap().config,
            Some("-c.toml".into())
        );
        let low = parse_words(&["config", "check", "--kubelet=/k", "f.toml"]).unwrap();
        assert_eq!(
            low.command,
            Command::ConfigCheck {
                file: Some("f.toml".into()),
                kubelet: Some("/k".into()),
                bin_dir: None,
                kubelet_version: None,
                no_files: false,
                root: "/".into(),
                secrets: vec![],
            }
        );
        let low = parse_words(&[
            "config",
            "check",
            "--root",
            "/host",
            "--secret",
            "a.b=/tmp/x",
            "--secret=c=d=e",
        ])
        .unwrap();
        let Command::ConfigCheck { root, secrets, .. } = low.command else {
            panic!("{:?}", low.command);
        };
        assert_eq!(root, PathBuf::from("/host"));
        assert_eq!(
            secrets,
            [("a.b".into(), "/tmp/x".into()), ("c".into(), "d=e".into())]
        );
        for bad in ["noequals", "=f", ".hidden=f", "a/b=f", "a="] {
            let e = parse_words(&["config", "check", "--secret", bad]).unwrap_err();
            assert!(e.to_string().starts_with("--secret: "), "{bad}: {e}");
        }
        assert_eq!(
            parse_words(&["cache", "purge", "--expired"])
                .unwrap()
                .command,
            Command::CachePurge {
                registry: None,
                expired: true
            }
        );
        for words in [
            &["doctor", "--help"][..],
            &["help", "doctor"],
            &["doctor", "help"],
        ] {
            assert!(
                matches!(
                    parse_words(words).unwrap().command,
                    Command::Help(h) if h.contains("Usage: pullcred doctor")
                ),
                "{words:?}"
            );
        }
        for words in [&["config", "help"][..], &["help", "config"]] {
            assert!(
                matches!(
                    parse_words(words).unwrap().command,
                    Command::Help(h) if h.contains("Usage: pullcred config check|match-images")
                ),
                "{words:?}"
            );
        }
        // A file operand may be any bytes, as a path may.
        use std::os::unix::ffi::OsStringExt;
        let file = OsString::from_vec(b"/tmp/\xff.toml".to_vec());
        let low = parse(
            "pullcred",
            vec!["config".into(), "check".into(), file.clone()],
        )
        .unwrap();
        assert!(
            matches!(low.command, Command::ConfigCheck { file: Some(f), .. } if f.as_os_str() == file)
        );
    }

    #[test]
    fn what_is_not_a_command_line_of_ours_is_one_line_naming_it_and_the_usage() {
        for (words, want) in [
            (
                &["frobnicate"][..],
                "unknown command 'frobnicate'; usage: pullcred [OPTIONS]",
            ),
            (
                &["config", "chek"],
                "unknown command 'config chek'; usage: pullcred config",
            ),
            (&["get"], "get needs an IMAGE"),
            (&["get", "a", "b"], "unexpected argument \"b\""),
            (
                &["cache", "purge", "--registry", "a", "--registry", "b"],
                "--registry is given twice",
            ),
            (&["--config=", "config", "check"], "--config needs a value"),
            (
                &["--config", "-v", "get", "i"],
                "--config needs a value, not the option \"-v\"",
            ),
            (&["help", "frob"], "unknown command 'frob'"),
            (
                &["doctor", "--no-cache", "x", "--kubelet-version", "1"],
                "(more: pullcred doctor --help)",
            ),
            (
                &["get", "a", "--merge", "m"],
                "--merge does not apply to 'get'",
            ),
            (&["--no-cache"], "--no-cache does not apply to the plugin"),
            (
                &["config", "check", "--bin-dir", "/b"],
                "--bin-dir needs --kubelet",
            ),
            (
                &["kubelet-config", "--drop-covered"],
                "--drop-covered needs --merge",
            ),
            (
                &["cache", "purge", "--expired", "--registry", "r"],
                "exclude each other",
            ),
            (
                &["kubelet-config", "--kubelet-version", "1.25"],
                "older than pullcred supports",
            ),
            (&["--config"], "missing argument"),
            (&["--frob"], "invalid option '--frob'"),
        ] {
            let e = parse_words(words).unwrap_err().to_string();
            assert!(e.contains(want), "{words:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
