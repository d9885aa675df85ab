//! pullcred's integration tests: each drives the built binary as the kubelet does (stdin
//! JSON, exit code, stdout, stderr) against fixture folders and real peers.

mod support;

mod acr;
mod architecture;
mod cache;
mod cli;
mod corpus;
mod deploy;
mod dist;
mod docker_config;
mod doctor;
mod ecr;
mod faults;
mod gcp;
mod helper;
mod install;
mod kubelet;
mod local_user;
mod matching;
mod metrics;
mod platform_identity;
mod protocol;
mod registry;
mod resolution;
mod rule_index;
mod secrets;
mod static_source;
mod stores;
mod workloads;
