//! Where a token or key may be sent: only over `https://`, plain `http://` only to this
//! machine (or a metadata service's own address), judged on the URL as the HTTP client
//! parses it.

/// An endpoint refused, and why; the URL is shown with any credential in it redacted.
#[derive(Debug, thiserror::Error)]
#[error("endpoint {shown:?} {fault}")]
pub struct EndpointError {
    shown: String,
    fault: Fault,
}

#[derive(Debug, thiserror::Error)]
enum Fault {
    #[error("is not a URL (it has white space)")]
    WhiteSpace,
    #[error("is not an http(s) URL ({0})")]
    NotUrl(url::ParseError),
    #[error("is not an http(s) URL")]
    Scheme,
    #[error("has user info (user@ or user:password@), which no endpoint takes")]
    UserInfo,
    #[error("has no host")]
    NoHost,
    #[error("must be https:// (plain http only to {0})")]
    Plain(String),
}

/// Tokens and keys travel only over `https://`; plain `http://` only to this machine.
pub fn endpoint_allowed(url: &str) -> Result<(), EndpointError> {
    endpoint_allowed_with(url, |_| false, "a loopback address")
}

/// An endpoint that is sent only signed requests (AWS's SigV4: the signature, never the
/// key, travels), where plain `http://` stays allowed as the AWS SDK allows it, for VPC and
/// test endpoints; the rest of the rule holds.
pub fn endpoint_signed(url: &str) -> Result<(), EndpointError> {
    endpoint_allowed_with(url, |_| true, "anywhere")
}

/// Like [`endpoint_allowed`], also letting plain `http://` reach a host `also_plain` accepts
/// (`what` names it in the refusal): a metadata service's link-local address.
///
/// The URL is parsed as the HTTP client will parse it and the host judged from that: a
/// prefix check took `http://[::1]@192.0.2.2/` for loopback while the client connected to
/// 192.0.2.2. User info is refused outright: no endpoint needs it, and it only hides where a
/// request goes (and would put a credential in logs).
pub fn endpoint_allowed_with(
    url: &str,
    also_plain: impl Fn(&url::Host<&str>) -> bool,
    what: &str,
) -> Result<(), EndpointError> {
    let refuse = |fault| {
        Err(EndpointError {
            shown: crate::logging::redact_urls(url).into_owned(),
            fault,
        })
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse(Fault::WhiteSpace);
    }
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return refuse(Fault::NotUrl(e)),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse(Fault::UserInfo);
    }
    let Some(host) = parsed.host() else {
        return refuse(Fault::NoHost);
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&host) || also_plain(&host) => Ok(()),
        "http" => refuse(Fault::Plain(what.to_string())),
        _ => refuse(Fault::Scheme),
    }
}

/// `localhost` or a loopback address, as parsed from a URL.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_but_for_loopback() {
        for ok in [
            "https://oauth2.googleapis.com/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:80/t",
            "http://localhost/t",
        ] {
            assert!(endpoint_allowed(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://oauth2.googleapis.com/token",
            "http://10.0.0.1/token",
            "ftp://x",
            "oauth2.googleapis.com",
            "http://127.0.0.1.evil.com/t",
            "http://127.0.0.1@evil.com/t",
            "http://[::1]@192.0.2.2:18080/token",
            "http://localhost@192.0.2.2/t",
            "http://localhost:80@192.0.2.2/t",
            "https://user:pw@oauth2.googleapis.com/token",
            "http://127.0.0.1 /t",
            "http:///t",
        ] {
            assert!(endpoint_allowed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signed_endpoints_may_be_plain_http_anywhere_but_keep_the_rest_of_the_rule() {
        for ok in ["http://vpce.example", "https://ecr.example:8443/"] {
            assert!(endpoint_signed(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("ftp://x", "is not an http(s) URL"),
            (
                "vpce.example",
                "is not an http(s) URL (relative URL without a base)",
            ),
            ("http://user@vpce.example", "has user info"),
            ("http://vpce.example /", "white space"),
        ] {
            let e = endpoint_signed(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
