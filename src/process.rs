//! What both binaries set up before anything else: SIGPIPE ignored (a closed stdout is an
//! error, not a silent death), a panic hook that prints one line with the location only (a
//! message could quote data) and exits 1 before unwinding or an abort can add a second line
//! or a core (killing any child process group the request started, as the deadline does),
//! and no core dumps or debuggers at all: memory holds credentials.

pub fn harden() {
    // SAFETY: setting a signal's disposition to ignore, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        crate::deadline::kill_child_group();
        eprintln!("pullcred: internal error: panic{at}");
        std::process::exit(1);
    }));
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
}
