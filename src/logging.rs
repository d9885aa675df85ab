//! Logs: to stderr only (stdout carries the response), one line per event, quiet by default.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Warnings and errors by default; each `-v` one level more; `PULLCRED_LOG` names a level.
/// Only pullcred's own events are shown, except that from `-vv` on the libraries' events up to
/// debug level are shown too: their trace events can quote request and response bodies, which
/// carry tokens.
pub fn init(verbose: u8, env_level: Option<&str>) {
    let from_env = env_level.and_then(|l| l.parse::<Level>().ok());
    let level = match verbose {
        0 => from_env.unwrap_or(Level::WARN),
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let libraries = verbose >= 2;
    let filter = tracing_subscriber::filter::filter_fn(move |meta| {
        if meta.target().starts_with("pullcred") {
            *meta.level() <= level
        } else {
            libraries && *meta.level() <= Level::DEBUG
        }
    });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .event_format(OneLine)
        .finish()
        .with(filter)
        .init();
}

/// `pullcred: warning: message key=value`, the shape of the error line `main` prints.
struct OneLine;

impl<S, N> FormatEvent<S, N> for OneLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "pullcred: {level}: ")?;
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
