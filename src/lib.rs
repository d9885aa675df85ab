//! pullcred: a kubelet image credential provider. The binaries' modules, as a library;
//! private unless a binary's `main` or a fuzz target needs them, so the compiler finds dead
//! code.

mod app;
pub mod args;
mod cache;
pub mod cli;
mod config;
mod credential;
pub mod deadline;
mod docker_auths;
mod doctor;
pub mod env;
mod error;
mod failure;
mod fields;
pub mod front;
mod helper;
mod http;
mod identity;
mod image;
mod kubelet;
mod kubelet_match;
pub mod logging;
mod metrics;
mod oauth;
pub mod process;
mod protocol;
mod proxy;
mod resolver;
pub mod roots;
mod rule_index;
mod rule_keys;
mod rules;
mod secret_file;
mod settings;
mod sources;
mod stored;
mod units;
mod workload;

pub use error::Error;

/// What the fuzz targets (fuzz/) drive: the parsers of untrusted bytes.
#[doc(hidden)]
pub mod fuzz_api {
    pub use crate::cache::decode;
    pub use crate::image::ImageRef;
    pub use crate::protocol::decode_request;
    pub use crate::rules::Pattern;
}
