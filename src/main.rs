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
    }));
    let cli = Cli::parse();
    match cli.run(Env::from_process()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{:#}", anyhow::Error::from(e));
            eprintln!("pullcred: {}", line.replace(['\n', '\r'], " "));
            ExitCode::FAILURE
        }
    }
}
