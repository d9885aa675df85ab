//! AWS SDK failures as one-line `SourceError`s whose kind says what to do next.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::MAX_ATTEMPTS;
use crate::failure::SourceError;
pub(crate) use crate::logging::error_causes as causes;
use crate::logging::error_chain as chain_text;

/// One line for an SDK failure: what was called, what kind of failure, and the causes. The
/// SDK's own `Display` says only "dispatch failure" or "service error".
pub fn sdk_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match &err {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            // No error code: the body was not an AWS error at all (a proxy's or portal's
            // page, or a garbled answer).
            let Some(code) = s.err().code() else {
                return SourceError::transient(format!(
                    "{what}: unreadable answer (HTTP {status}, not an AWS response)"
                ));
            };
            let message = s.err().message().unwrap_or("");
            let text = format!("{what}: HTTP {status} {code}: {message}");
            let throttled = code.contains("Throttl") || code == "TooManyRequestsException";
            if status >= 500 || throttled {
                SourceError::transient(format!("{text} (gave up after {MAX_ATTEMPTS} attempts)"))
            } else {
                SourceError::denied(text)
            }
        }
        SdkError::TimeoutError(_) => {
            SourceError::transient(format!("{what}: no answer in time ({})", chain_text(&err)))
        }
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                "timed out"
            } else if d.is_io() {
                "cannot connect"
            } else {
                "request failed"
            };
            SourceError::transient(format!("{what}: {kind}: {}", causes(&err)))
        }
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            SourceError::transient(format!(
                "{what}: unreadable answer (HTTP {status}): {}",
                causes(&err)
            ))
        }
        SdkError::ConstructionFailure(_) => {
            SourceError::local(format!("{what}: {}", chain_text(&err)))
        }
        _ => SourceError::transient(format!("{what}: {}", chain_text(&err))),
    }
}
