//! The front binary, `pullcred`: what the kubelet execs for every pull. It answers a cache
//! hit itself, linking only the request, config, rules and cache code (source kinds as
//! [`SPECS`], without their minting, so that no SDK is reachable from it and the binary that
//! starts for every pull stays small). Anything else, a miss, a subcommand, a log level, any
//! error, is handed to `pullcred-mint` beside it: the same arguments, the request's bytes as
//! its stdin, the deadline's timer still running. The minting binary does everything again
//! and is the one that reports errors, so the front never needs to.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use crate::app::answer_hit;
use crate::cache::Cache;
use crate::config::Config;
use crate::env::Env;
use crate::protocol::{self, ApiVersion, Request};
use crate::sources::{SPECS, Spec};

/// The minting binary's file name, beside the front's.
pub const MINT_BINARY: &str = "pullcred-mint";
/// Set for the minting binary: the front's version, which must be its own.
pub const FRONT_VERSION_VAR: &str = "PULLCRED_FRONT_VERSION";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the front understands of a command line: plugin mode or `get IMAGE`, with
/// `--config` and `--cache-dir`. Anything else is the minting binary's.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FrontArgs {
    pub config: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub get: Option<String>,
}

pub fn parse_args(args: &[OsString]) -> Option<FrontArgs> {
    let mut out = FrontArgs::default();
    let mut it = args.iter().map(|a| a.to_str());
    while let Some(arg) = it.next() {
        let arg = arg?;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().flatten().map(str::to_string))
        };
        match flag {
            "--config" => out.config = Some(PathBuf::from(value()?)),
            "--cache-dir" => out.cache_dir = Some(PathBuf::from(value()?)),
            "get" if out.get.is_none() => {
                let image = it.next()??;
                if image.starts_with('-') {
                    return None;
                }
                out.get = Some(image.to_string());
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Runs the front; returns only when answering itself (the exit code), else it has become
/// the minting binary, under the name it was run by (`program`, its `argv[0]`), so that
/// help, usage and error lines name what the user ran.
pub fn run(program: Option<OsString>, args: Vec<OsString>, env: &Env) -> i32 {
    let program = program.as_deref();
    // A log level asked for: the minting binary logs, the front does not.
    let Some(front) = parse_args(&args).filter(|_| env.var("PULLCRED_LOG").is_none()) else {
        return hand_over(program, &args, None);
    };
    let config_path = crate::settings::config_path(front.config.clone(), env);
    let Ok(config) = Config::<dyn Spec>::load_with(config_path.as_deref(), SPECS, env.uid()) else {
        return hand_over(program, &args, None);
    };
    let armed = crate::deadline::arm(config.deadline);
    let hand_over =
        |args: &[OsString], stdin| hand_over_within(program, args, stdin, Some(config.deadline));
    let (req, bytes) = match front.get {
        Some(image) => (
            Request {
                api_version: ApiVersion::V1,
                image,
                service_account_token: None,
                service_account_annotations: Default::default(),
            },
            None,
        ),
        None => {
            let bytes = match protocol::read_bytes(std::io::stdin().lock()) {
                Ok(b) => b,
                // The minting binary reads the same stdin again and names the error.
                Err(_) => return keep_timer(armed, hand_over(&args, None)),
            };
            if bytes.len() as u64 > protocol::MAX_REQUEST_BYTES {
                return keep_timer(armed, hand_over(&args, Some(&bytes)));
            }
            match protocol::decode_request(&bytes) {
                Ok(req) => (req, Some(bytes)),
                Err(_) => return keep_timer(armed, hand_over(&args, Some(&bytes))),
            }
        }
    };
    let dir = crate::settings::cache_dir(front.cache_dir, config.cache.dir.as_deref(), env);
    let answer = dir
        .and_then(|d| Cache::open(&d, env.uid()).ok())
        .and_then(|cache| answer_hit(&req, &config, env, &cache));
    match answer {
        Some(resp) => {
            let out = resp.encode();
            drop(armed);
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("pullcred: writing the response: {}", e.kind());
                    1
                }
            }
        }
        None => keep_timer(armed, hand_over(&args, bytes.as_deref())),
    }
}

/// The deadline's timer stays armed across the `exec`: the minting binary inherits it.
fn keep_timer(armed: crate::deadline::Armed, code: i32) -> i32 {
    std::mem::forget(armed);
    code
}

/// Becomes the minting binary beside this one, with the same arguments and `stdin` (the
/// request's bytes already read) as its standard input. Returns only if that fails.
fn hand_over(program: Option<&std::ffi::OsStr>, args: &[OsString], stdin: Option<&[u8]>) -> i32 {
    hand_over_within(program, args, stdin, None)
}

/// [`hand_over`] with the deadline's timer running: SIGALRM is held blocked across the
/// `exec` and the configured `deadline` named to the minting binary, which handles the
/// signal first thing, so a timer that fires in between still ends with its one line.
fn hand_over_within(
    program: Option<&std::ffi::OsStr>,
    args: &[OsString],
    stdin: Option<&[u8]>,
    deadline: Option<std::time::Duration>,
) -> i32 {
    let mint = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(MINT_BINARY),
        Err(e) => {
            eprintln!("pullcred: cannot find this binary's directory: {e}");
            return 1;
        }
    };
    let mut cmd = std::process::Command::new(&mint);
    cmd.args(args).env(FRONT_VERSION_VAR, VERSION);
    if let Some(name) = program {
        cmd.arg0(name);
    }
    if let Some(d) = deadline {
        let text = humantime::format_duration(d).to_string();
        cmd.env(crate::deadline::FRONT_DEADLINE_VAR, text);
    }
    if let Some(bytes) = stdin {
        match memfd_with(bytes) {
            Ok(file) => {
                cmd.stdin(file);
            }
            Err(e) => {
                eprintln!("pullcred: cannot hand the request over: {e}");
                return 1;
            }
        }
    }
    crate::deadline::hold();
    let e = cmd.exec();
    crate::deadline::install(None);
    eprintln!(
        "pullcred: cannot run {}: {e} (pullcred and pullcred-mint are installed together, in one directory)",
        mint.display()
    );
    1
}

/// An anonymous in-memory file holding `bytes`, positioned at its start.
fn memfd_with(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let fd = rustix::fs::memfd_create("pullcred-request", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// For the minting binary: refuses a front of another version (a half-done upgrade).
pub fn check_front_version(env: &Env) -> Result<(), String> {
    match env.var(FRONT_VERSION_VAR) {
        Some(v) if v != VERSION => Err(format!(
            "pullcred {v} handed over to pullcred-mint {VERSION}: install both from one release"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_front_takes_plugin_mode_and_get_and_hands_over_the_rest() {
        assert_eq!(parse_args(&args(&[])), Some(FrontArgs::default()));
        assert_eq!(
            parse_args(&args(&[
                "--config",
                "/c.toml",
                "--cache-dir=/d",
                "get",
                "nginx"
            ])),
            Some(FrontArgs {
                config: Some("/c.toml".into()),
                cache_dir: Some("/d".into()),
                get: Some("nginx".into()),
            })
        );
        for other in [
            &["version"][..],
            &["-v"],
            &["config", "check"],
            &["get"],
            &["get", "--api-version", "v1beta1", "x"],
            &["get", "a", "b"],
            &["--config"],
            &["cache", "list"],
        ] {
            assert_eq!(parse_args(&args(other)), None, "{other:?}");
        }
    }
}
