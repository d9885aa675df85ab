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
        let mut text = String::new();
        ctx.format_fields(Writer::new(&mut text), event)?;
        writeln!(w, "pullcred: {level}: {}", one_line(&text))
    }
}

/// The most of one log or error line; upstream messages and request values are untrusted
/// and can be of any length.
pub const MAX_LINE: usize = 1000;

/// `text` made safe for one stderr line: URLs lose their user info, query and fragment
/// ([`redact_urls`]), line breaks and other control characters become spaces (nobody can
/// forge a second line), and it is cut at [`MAX_LINE`] bytes.
pub fn one_line(text: &str) -> String {
    let mut out: String = redact_urls(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// Every URL in `text` with its user info, query and fragment replaced by `[redacted]`:
/// they are where URLs carry secrets (`user:password@`, `?api-key=`, `?sig=`), and every log
/// and error line passes through here. A URL runs from its `scheme://` to white space, a
/// quote or an angle bracket.
pub fn redact_urls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || c.is_control() || "\"'`<>\\".contains(c))
            .unwrap_or(after.len());
        let mut url = &after[..end];
        // User info up to the last `@`, wherever it is: a lenient parser takes
        // `u:pa/ss@host` as user info too (a path with an `@` loses its host here; no matter).
        if let Some(at) = url.rfind('@') {
            out.push_str("[redacted]@");
            url = &url[at + 1..];
        }
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        out.push_str(&url[..authority_end]);
        let tail = &url[authority_end..];
        match tail.find(['?', '#']) {
            Some(q) => {
                out.push_str(&tail[..q]);
                out.push_str(&tail[q..q + 1]);
                out.push_str("[redacted]");
            }
            None => out.push_str(tail),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// An error and all its causes, on one line, without repeats: the one way every module
/// turns a library's error chain into text.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The causes of an error, without its own (often generic) message; the message itself
/// when it has no cause.
pub fn error_causes(err: &(dyn std::error::Error + 'static)) -> String {
    match err.source() {
        Some(cause) => error_chain(cause),
        None => error_chain(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_info_query_and_fragment() {
        for (text, want) in [
            (
                "GET https://sts.example/v1?api-key=s3cret&x=1 failed",
                "GET https://sts.example/v1?[redacted] failed",
            ),
            (
                "endpoint \"http://[::1]@192.0.2.2:18080/token\" refused",
                "endpoint \"http://[redacted]@192.0.2.2:18080/token\" refused",
            ),
            (
                "url (https://u:p@h/a#frag) and http://plain/path",
                "url (https://[redacted]@h/a#[redacted] and http://plain/path",
            ),
            ("http://h?k=v\nnext", "http://h?[redacted]\nnext"),
            ("https://user:pa/ss@host/p", "https://[redacted]@host/p"),
            ("https://u:p?w@h/", "https://[redacted]@h/"),
            ("no urls here", "no urls here"),
            ("a:// b", "a:// b"),
        ] {
            assert_eq!(redact_urls(text), want, "{text}");
        }
        assert!(!one_line("x https://h/?token=s3cret").contains("s3cret"));
    }

    #[test]
    fn lines_are_single_and_bounded() {
        assert_eq!(one_line("a\nb\r\tc\u{1b}[31m"), "a b  c [31m");
        let long = "é".repeat(MAX_LINE);
        let cut = one_line(&long);
        assert!(cut.len() <= MAX_LINE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
