//! pullcred: a kubelet image credential provider. The binary's modules, as a library so that
//! unit tests and benchmarks can reach them.

pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod credential;
pub mod deadline;
pub mod doctor;
pub mod env;
pub mod error;
pub mod front;
pub mod http;
pub mod image;
pub mod kubelet;
mod kubelet_match;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod process;
pub mod protocol;
pub mod proxy;
pub mod resolver;
pub mod roots;
pub mod rules;
pub mod secret_file;
mod settings;
pub mod sources;
pub mod units;
pub mod workload;

pub use error::Error;
