//! Entry point of `pullcred`, the front binary the kubelet execs (see `front`): it answers
//! cache hits and hands everything else to `pullcred-mint`.
//!
//! `no_main`, as the minting binary: std's start-up work before `main` is a good part of
//! what a hit costs; `process::harden` does what of it matters.
#![no_main]

use pullcred::env::Env;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    pullcred::process::harden();
    pullcred::deadline::install(None);
    let env = Env::from_process();
    let mut args = std::env::args_os();
    let program = args.next();
    pullcred::front::run(program, args.collect(), &env)
}
