//! What OAuth-style token endpoints share, for the sources that mint through them (Google's
//! token endpoint, STS and metadata server; Entra ID, Azure IMDS and ACR's exchange): the
//! call as they expect it (retried on throttling and 5xx), their answers' `access_token`,
//! their refusals read in each of their shapes, and JWTs (`jwt`).

pub mod jwt;

use std::time::Instant;

use crate::http::{Call, Unreadable};

/// A call to a token endpoint: retried on 429 and 5xx, as OAuth endpoints expect, and a
/// refusal told in the endpoint's own words.
pub fn call(what: &str, attempts: u32, deadline: Instant) -> Call<'_> {
    Call {
        what,
        attempts,
        deadline,
        transient: |status, _| status == 429 || status >= 500,
        absent: |_, _| false,
        explain: |body| refusal(body).unwrap_or_else(|| "not an OAuth error answer".into()),
    }
}

/// The `access_token` of an OAuth 2.0 token answer (RFC 6749 section 5.1), which must not be
/// empty; its other fields are the caller's business.
pub fn access_token(body: &[u8]) -> Result<String, Unreadable> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| Unreadable::Not("an access token"))?;
    if a.access_token.is_empty() {
        return Err(Unreadable::Empty("access token"));
    }
    Ok(a.access_token)
}

/// Why a non-2xx answer refused, in the shapes token endpoints use: OAuth's `error` and
/// `error_description` (RFC 6749 section 5.2, Entra ID, Azure IMDS), Google APIs'
/// `error.status` and `error.message`, and the registry API's `errors[].code` and
/// `.message` (ACR's exchange). Token endpoints do not echo credentials in these fields.
fn refusal(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |x: Option<&serde_json::Value>| x.and_then(|x| x.as_str()).map(str::to_string);
    let parts: Vec<String> = match (&v["error"], &v["errors"]) {
        (serde_json::Value::String(e), _) => [Some(e.clone()), text(v.get("error_description"))]
            .into_iter()
            .flatten()
            .collect(),
        (serde_json::Value::Object(o), _) => [text(o.get("status")), text(o.get("message"))]
            .into_iter()
            .flatten()
            .collect(),
        (_, serde_json::Value::Array(list)) => list
            .iter()
            .flat_map(|e| [text(e.get("code")), text(e.get("message"))])
            .flatten()
            .collect(),
        _ => Vec::new(),
    };
    // One line: Entra's descriptions carry trace ids on further lines.
    let joined = parts.join(": ");
    let first = joined.lines().next().unwrap_or("").trim().to_string();
    (!first.is_empty()).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_each_shape() {
        let cases: [(&str, Option<&str>); 6] = [
            (
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret.\r\nTrace ID: x"}"#,
                Some("invalid_client: AADSTS7000215: Invalid client secret."),
            ),
            (
                r#"{"error":{"status":"PERMISSION_DENIED","message":"no"}}"#,
                Some("PERMISSION_DENIED: no"),
            ),
            (
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"aad token invalid"}]}"#,
                Some("UNAUTHORIZED: aad token invalid"),
            ),
            (r#"{"error":""}"#, None),
            ("<html>", None),
            ("[]", None),
        ];
        for (body, want) in cases {
            assert_eq!(refusal(body.as_bytes()).as_deref(), want, "{body}");
        }
    }
}
