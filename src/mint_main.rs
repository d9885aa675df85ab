//! Entry point of `pullcred-mint`, the full binary (the front, `pullcred`, hands it every
//! request it does not answer from the cache): parse the command line, run, and turn an
//! error into one stderr line and an exit code.
//!
//! `no_main`, as the front: std's start-up work before `main` (finding the main thread's
//! stack guard by parsing /proc/self/maps, an alternate signal stack) is a measurable part
//! of a short-lived process's work; what of it matters is done by
//! `process::harden`. Arguments still reach `std::env::args` (glibc hands them over before
//! `main`).
#![no_main]

use pullcred::env::Env;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    pullcred::process::harden();
    let env = Env::from_process();
    // Before anything else: the front's timer may have fired during the hand-over.
    pullcred::deadline::install(env.var(pullcred::deadline::FRONT_DEADLINE_VAR));
    // SAFETY: nothing else runs yet, no thread exists.
    unsafe { pullcred::roots::name_bundle() };
    if let Err(e) = pullcred::front::check_front_version(&env) {
        eprintln!("pullcred: {e}");
        return 1;
    }
    let mut args = std::env::args_os();
    let program = pullcred::front::program_name(args.next().as_deref());
    let low = match pullcred::args::parse(&program, args.collect()) {
        Ok(low) => low,
        Err(e) => {
            eprintln!("{program}: {e}");
            return 2;
        }
    };
    match pullcred::cli::run(low, env) {
        Ok(()) => 0,
        Err(e) => {
            let line = pullcred::logging::error_chain(&e);
            eprintln!("pullcred: {}", pullcred::logging::one_line(&line));
            1
        }
    }
}
