//! Entry point of `pullcred`, the front binary the kubelet execs (see `front`): it answers
//! cache hits and hands everything else to `pullcred-mint`.
//!
//! `no_main`, as the minting binary: std's start-up work before `main` is a good part of
//! what a hit costs. SIGPIPE is ignored, so a closed stdout is an error, not a silent death.
#![no_main]

use pullcred::env::Env;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to ignore, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // One line, the location only (a message could quote data), and no core: memory holds
    // credentials.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("pullcred: internal error: panic{at}");
        std::process::exit(1);
    }));
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let env = Env::from_process();
    pullcred::front::run(std::env::args_os().skip(1).collect(), &env)
}
