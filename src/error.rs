//! The errors a run of pullcred can end with. Each wraps the typed error of the module that
//! failed; `main` prints the chain on one line.

use crate::cache::CacheError;
use crate::config::ConfigError;
use crate::image::ImageError;
use crate::protocol::{Quoted, RequestError};
use crate::sources::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request")]
    Request(#[source] RequestError),
    #[error("request: image {image}")]
    Image {
        image: Quoted,
        #[source]
        err: ImageError,
    },
    #[error("config")]
    Config(#[source] ConfigError),
    #[error("rule {rule} ({source_name}) for {mint_host}")]
    Source {
        rule: usize,
        source_name: &'static str,
        mint_host: String,
        #[source]
        err: SourceError,
    },
    #[error("cache")]
    Cache(#[source] CacheError),
    #[error("cache: {0}")]
    CacheIo(String),
    #[error("kubelet config: {0} error(s), listed above")]
    KubeletConfig(usize),
    #[error(
        "config: {0} secret file(s) cannot be read, listed above (--no-files checks the config alone)"
    )]
    Files(usize),
    #[error("doctor: {0} check(s) failed, listed above")]
    Doctor(usize),
    #[error("kubelet config to merge into: {0}")]
    Merge(String),
    /// The rules ask for what the kubelet of the version named cannot do.
    #[error("kubelet-config")]
    KubeletVersion(#[source] crate::kubelet::GenerateError),

    /// The docker credential helper protocol's refusals (`helper`).
    #[error("credential helper: {0}")]
    Helper(String),
    /// No credentials for the server asked (the protocol's "not found" is on stdout).
    #[error("credential helper: {0}")]
    HelperNotFound(String),

    #[error("writing the response: {0}")]
    Output(std::io::ErrorKind),
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        Error::Request(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}
