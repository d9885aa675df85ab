//! The command line: plugin mode (what the kubelet runs) and the operators' subcommands.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app;
use crate::config::{Config, DEFAULT_CONFIG_PATH, Origin};
use crate::env::Env;
use crate::error::Error;
use crate::protocol::{self, ApiVersion, Request};

/// A kubelet image credential provider: ECR, GCR/Artifact Registry, ACR and static
/// credentials from one binary, cached on the node.
///
/// Without a subcommand it is the plugin the kubelet execs: a CredentialProviderRequest on
/// stdin, a CredentialProviderResponse on stdout.
#[derive(Parser, Debug)]
#[command(name = "pullcred", version, about)]
pub struct Cli {
    /// Config file [default: /etc/pullcred/config.toml, else the built-in rules]
    #[arg(long, global = true, env = "PULLCRED_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

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
    /// Print the version
    Version,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate a config and print its rules in the order they are tried
    Check {
        /// Config file [default: --config, else /etc/pullcred/config.toml]
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
    pub fn run(self, env: Env) -> Result<(), Error> {
        crate::logging::init(self.verbose, env.var("PULLCRED_LOG"));
        match self.command {
            None => {
                let config = Config::load(self.config.as_deref())?;
                serve(config, env, |_| {
                    protocol::read_request(std::io::stdin().lock()).map_err(Error::from)
                })
            }
            Some(Command::Get { image, api_version }) => {
                let config = Config::load(self.config.as_deref())?;
                serve(config, env, move |_| {
                    Ok(Request {
                        api_version: api_version.into(),
                        image,
                        service_account_token: None,
                        service_account_annotations: Default::default(),
                    })
                })
            }
            Some(Command::Config(ConfigCommand::Check { file })) => {
                let config = Config::load(file.as_deref().or(self.config.as_deref()))?;
                print(&describe(&config))
            }
            Some(Command::Version) => print(&format!("pullcred {}\n", env!("CARGO_PKG_VERSION"))),
        }
    }
}

/// Reads a request and answers it within the config's deadline; only a complete answer
/// reaches stdout.
fn serve(
    config: Config,
    env: Env,
    request: impl FnOnce(&Env) -> Result<Request, Error> + Send + 'static,
) -> Result<(), Error> {
    let limit = config.deadline;
    let out = app::within_deadline(limit, move |deadline| {
        let req = request(&env)?;
        Ok(app::answer(&req, &config, &env, deadline)?.encode())
    })?;
    print(&out)
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
        out.push_str(&format!("{rule}\n"));
    }
    out
}
