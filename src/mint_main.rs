//! Entry point of `pullcred-mint`, the full binary (the front, `pullcred`, hands it every
//! request it does not answer from the cache): parse the command line, run, and turn an
//! error into one stderr line and an exit code.
//!
//! `no_main`: the kubelet execs this binary for every pull, and std's start-up work before
//! `main` (finding the main thread's stack guard by parsing /proc/self/maps, an alternate
//! signal stack) was an eighth of a cache hit's instructions. What of it matters is done
//! here: SIGPIPE ignored, so a closed stdout is an error and not a silent death. Arguments
//! still reach `std::env::args` (glibc hands them over before `main`).
#![no_main]

use pullcred::cli::Cli;
use pullcred::env::Env;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to ignore, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // A panic must still end as one line on stderr, and its message could quote data, so
    // only the location is printed.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("pullcred: internal error: panic{at}");
        // Exit here, before unwinding or `panic = "abort"` can add a second line or a
        // SIGABRT core dump: memory holds tokens.
        std::process::exit(1);
    }));
    // Nor may any other crash leave a core with tokens in it (this also keeps other users'
    // debuggers out of the process).
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let env = Env::from_process();
    if let Err(e) = pullcred::front::check_front_version(&env) {
        eprintln!("pullcred: {e}");
        return 1;
    }
    let cli = Cli::from_process(&env);
    match cli.run(env) {
        Ok(()) => 0,
        Err(e) => {
            let line = format!("{:#}", anyhow::Error::from(e));
            eprintln!("pullcred: {}", pullcred::logging::one_line(&line));
            1
        }
    }
}
