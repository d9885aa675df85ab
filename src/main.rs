//! Entry point: parse the command line, run, and turn an error into one stderr line and an exit code.

use std::process::ExitCode;

use clap::Parser;
use pullcred::cli::Cli;
use pullcred::env::Env;

fn main() -> ExitCode {
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
    let cli = Cli::parse();
    match cli.run(Env::from_process()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{:#}", anyhow::Error::from(e));
            eprintln!("pullcred: {}", pullcred::logging::one_line(&line));
            ExitCode::FAILURE
        }
    }
}
