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

use crate::app::answer_hit;
use crate::args::Command;
use crate::cache::Cache;
use crate::config::Config;
use crate::env::Env;
use crate::protocol::{self, Request};
use crate::rule_index;
use crate::settings::Settings;
use crate::sources::{SPECS, Spec};

/// The minting binary's file name, beside the front's.
pub const MINT_BINARY: &str = "pullcred-mint";
/// Set for the minting binary: the front's version, which must be its own.
pub const FRONT_VERSION_VAR: &str = "PULLCRED_FRONT_VERSION";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the front; returns only when answering itself (the exit code), else it has become
/// the minting binary, under the name it was run by (`program`, its `argv[0]`), so that
/// help, usage and error lines name what the user ran.
pub fn run(program: Option<OsString>, args: Vec<OsString>, env: &Env) -> i32 {
    let name = program_name(program.as_deref());
    let program = program.as_deref();
    // Plugin mode and `get`, without a log level asked for (the minting binary logs, the
    // front does not): anything else, a usage error included, is the minting binary's.
    let low = match crate::args::parse(&name, args.clone()) {
        Ok(low)
            if low.verbose == 0
                && env.var("PULLCRED_LOG").is_none()
                && matches!(low.command, Command::Plugin | Command::Get { .. }) =>
        {
            low
        }
        _ => return hand_over(program, &args, None),
    };
    let settings = Settings::resolve(&low, env);
    // The rule index lives in the cache dir the flag, the variable or the default names: it
    // is read before the config says anything, so a config that moves the cache elsewhere
    // is read whole.
    let index_dir = settings.cache_dir(None, env);
    let index_cache = index_dir
        .as_deref()
        .and_then(|d| Cache::open_existing(d, env.uid()));
    let mut loaded =
        match rule_index::load(settings.config.as_deref(), SPECS, env, index_cache.as_ref()) {
            Ok(loaded) => loaded,
            Err(_) => return hand_over(program, &args, None),
        };
    let deadline = loaded.settings().deadline;
    let armed = crate::deadline::arm(deadline);
    let hand_over =
        |args: &[OsString], stdin| hand_over_within(program, args, stdin, Some(deadline));
    let (req, bytes) = match low.command {
        Command::Get { image, api_version } => (
            Request {
                api_version,
                image,
                service_account_token: None,
                service_account_annotations: Default::default(),
            },
            None,
        ),
        _ => {
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
    let dir = settings.cache_dir(loaded.settings().cache.dir.as_deref(), env);
    let indexed_here = dir.is_some() && dir == index_dir;
    let cache = match index_cache {
        Some(cache) if indexed_here => Some(cache),
        _ => dir.and_then(|d| Cache::open(&d, env.uid()).ok()),
    };
    if indexed_here && let Some(cache) = &cache {
        loaded.store_index(cache);
    }
    let host = || {
        crate::image::ImageRef::parse(&req.image)
            .ok()
            .map(|i| i.hostname().to_ascii_lowercase())
    };
    let config = match loaded.for_host(host, SPECS) {
        Some(config) => config,
        // The index could not give the rules: the file, read whole.
        None => match Config::<dyn Spec>::load_with(settings.config.as_deref(), SPECS, env.uid()) {
            Ok(config) => config,
            Err(_) => return keep_timer(armed, hand_over(&args, bytes.as_deref())),
        },
    };
    let answer = cache
        .as_ref()
        .and_then(|cache| answer_hit(&req, &config, env, cache));
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

/// The file name the user ran (`pullcred`), for usage and help lines.
pub fn program_name(program: Option<&std::ffi::OsStr>) -> String {
    program
        .and_then(|p| std::path::Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pullcred".into())
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
pub fn check_front_version(env: &Env) -> Result<(), VersionMismatch> {
    match env.var(FRONT_VERSION_VAR) {
        Some(v) if v != VERSION => Err(VersionMismatch(v.to_string())),
        _ => Ok(()),
    }
}

/// The front that handed over is of another version (a half-done upgrade).
#[derive(Debug, thiserror::Error)]
#[error("pullcred {0} handed over to pullcred-mint {VERSION}: install both from one release")]
pub struct VersionMismatch(String);
