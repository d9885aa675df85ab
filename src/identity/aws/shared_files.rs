//! The AWS shared files, read once and checked before the SDK sees them: the config file can
//! name a `credential_process`, which the SDK runs as the caller (root on a node), and
//! endpoints that receive signed requests, so a file another user owns or may write is
//! refused, as a secret file would be. The SDK is then handed the checked contents, never the
//! paths, so nothing is re-read after the check.

use std::path::{Path, PathBuf};

use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};

use crate::env::Env;
use crate::failure::SourceError;
use crate::secret_file;

/// The shared config and credentials files' contents (as checked), for every SDK component
/// of one mint.
pub(super) fn read(env: &Env) -> Result<ProfileFiles, SourceError> {
    let home = env.home();
    let default = |rel: &str| home.as_ref().map(|h| h.join(rel));
    let config = env
        .var("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| default(".aws/config"));
    let credentials = env
        .var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| default(".aws/credentials"));
    // The web identity token is read by the SDK itself (by path, at each use): checked here
    // all the same, so a planted one ends the mint before anything is sent.
    if let Some(token) = env.var("AWS_WEB_IDENTITY_TOKEN_FILE") {
        checked(Path::new(token), env.uid(), "web identity token file")?;
    }
    let mut files = ProfileFiles::builder();
    for (kind, path, what) in [
        (ProfileFileKind::Config, config, "AWS config file"),
        (
            ProfileFileKind::Credentials,
            credentials,
            "AWS credentials file",
        ),
    ] {
        let text = match &path {
            Some(p) => checked(p, env.uid(), what)?,
            None => None,
        };
        // An absent file is an empty one, as the SDK itself takes it.
        files = files.with_contents(kind, text.unwrap_or_default());
    }
    Ok(files.build())
}

/// The file's text if it exists, read through the owner and mode check.
fn checked(path: &Path, uid: u32, what: &'static str) -> Result<Option<String>, SourceError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    Ok(Some(secret_file::read_trusted(path, uid, what)?))
}
