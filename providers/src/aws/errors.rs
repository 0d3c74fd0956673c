//! AWS errors to [`ProviderError`]: by the service's error code (the `__type` of a JSON error, the `Code` of a
//! query-protocol error), then by what failed underneath (credentials, timeouts, connections).
//!
//! Messages carry the error code and AWS's message (which names the secret or role, never a value); request
//! IDs and the `Credential=` part AWS sometimes echoes are left out, as ESO's `SanitizeErr` does.
use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use crate::error::ProviderError;

/// Codes of a caller whose credentials were not accepted (unknown key, bad signature, expired session).
const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
    "IDPCommunicationError",
];

/// Codes of an authenticated caller that may not do this.
const DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "DecryptionFailure",
    "RegionDisabledException",
];

/// Codes that ask the caller to slow down.
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "LimitExceededException",
    "PriorRequestNotComplete",
];

/// What an error code (and its message) means for `key`. `throttle_wait` is the `retrySettings.retryInterval`
/// the SDK already waited between its retries: the operator waits at least that long again.
pub(crate) fn from_code(
    code: &str,
    message: &str,
    status: Option<u16>,
    key: &str,
    throttle_wait: Option<Duration>,
) -> ProviderError {
    let text = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {}", sanitize(message))
    };
    match code {
        // Secrets Manager; Parameter Store (a name, or a `name:version` / `name:label` selector, that is not there).
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            ProviderError::NotFound { key: key.to_string() }
        }
        // A secret scheduled for deletion reads as absent (ESO: NoSecretErr), so deletionPolicy applies.
        // AWS says "marked for deletion", moto "marked deleted".
        "InvalidRequestException" | "InvalidParameterException"
            if message.contains("marked for deletion") || message.contains("marked deleted") =>
        {
            ProviderError::NotFound { key: key.to_string() }
        }
        c if AUTH_CODES.contains(&c) => ProviderError::Auth(text),
        c if DENIED_CODES.contains(&c) => ProviderError::AccessDenied(text),
        c if THROTTLE_CODES.contains(&c) => ProviderError::Throttled {
            retry_after: throttle_wait,
        },
        _ => match status {
            Some(401) => ProviderError::Auth(text),
            Some(403) => ProviderError::AccessDenied(text),
            Some(429) => ProviderError::Throttled {
                retry_after: throttle_wait,
            },
            _ => ProviderError::Transport(text),
        },
    }
}

/// Maps a failed SDK call on `key` (`op` names the call for messages).
pub(crate) fn from_sdk<E>(
    err: SdkError<E, HttpResponse>,
    op: &str,
    key: &str,
    throttle_wait: Option<Duration>,
) -> ProviderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    if let SdkError::ServiceError(_) = &err {
        let mut code = err.code().unwrap_or_default().to_string();
        let mut message = err.message().unwrap_or_default().to_string();
        if code.is_empty() {
            // Some endpoints (proxies, emulators) answer a JSON-protocol call with a query-protocol XML error.
            let body = err.raw_response().and_then(|r| r.body().bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(body);
            code = xml_element(&text, "Code").unwrap_or_default();
            message = xml_element(&text, "Message").unwrap_or(message);
        }
        return from_code(&code, &message, status, key, throttle_wait);
    }
    // Not an answer of the service: look underneath (credential providers put our own error there).
    if let Some(inner) = find_source::<ProviderError>(&err) {
        return duplicate(inner);
    }
    let chain = error_chain(&err);
    if find_source::<aws_credential_types::provider::error::CredentialsError>(&err).is_some() {
        return ProviderError::Auth(format!("{op}: no usable AWS credentials: {chain}"));
    }
    match &err {
        SdkError::TimeoutError(_) => ProviderError::Transport(format!("{op}: timed out: {chain}")),
        SdkError::ConstructionFailure(_) => ProviderError::InvalidValue {
            key: key.to_string(),
            message: format!("{op}: invalid request: {chain}"),
        },
        _ => ProviderError::Transport(format!("{op}: {chain}")),
    }
}

/// The text of the first `<name>…</name>` in `xml`.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_string())
}

/// The first error of type `T` in `err`'s source chain (including `err` itself).
pub(crate) fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// `err` and its sources (see [`crate::error::error_chain`]), without AWS request IDs.
pub(crate) fn error_chain(err: &(dyn StdError + 'static)) -> String {
    sanitize(&crate::error::error_chain(err))
}

/// Drops request IDs and echoed credential scopes from an AWS message (ESO's `SanitizeErr`).
pub(crate) fn sanitize(message: &str) -> String {
    let mut out = message.to_string();
    for marker in ["request id: ", "Request ID: ", "RequestId: "] {
        while let Some(at) = out.find(marker) {
            let end = out[at + marker.len()..]
                .find(char::is_whitespace)
                .map(|i| at + marker.len() + i)
                .unwrap_or(out.len());
            out.replace_range(at..end, "");
        }
    }
    if let Some(at) = out.find(" Credential=") {
        out.truncate(at);
    }
    out.trim().trim_end_matches([',', ':']).trim().to_string()
}

/// A store validation from a signed probe call: an `AccessDenied` answer still proves the credentials authenticate
/// (permissions are checked per secret or parameter at read time); anything else that failed is the store's error.
pub(crate) fn validation<T>(probe: Result<T, ProviderError>) -> Result<crate::client::Validation, ProviderError> {
    match probe {
        Ok(_) | Err(ProviderError::AccessDenied(_)) => Ok(crate::client::Validation::Ready),
        Err(e) => Err(e),
    }
}

/// A copy of a provider error (errors fan out to every waiter of a batched read).
pub(crate) fn duplicate(e: &ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound { key } => ProviderError::NotFound { key: key.clone() },
        ProviderError::PropertyNotFound { key, property } => ProviderError::PropertyNotFound {
            key: key.clone(),
            property: property.clone(),
        },
        ProviderError::AccessDenied(m) => ProviderError::AccessDenied(m.clone()),
        ProviderError::Auth(m) => ProviderError::Auth(m.clone()),
        ProviderError::Throttled { retry_after } => ProviderError::Throttled {
            retry_after: *retry_after,
        },
        ProviderError::InvalidConfig { field, message } => ProviderError::InvalidConfig {
            field: field.clone(),
            message: message.clone(),
        },
        ProviderError::Credentials(m) => ProviderError::Credentials(m.clone()),
        ProviderError::Unsupported(m) => ProviderError::Unsupported(m.clone()),
        ProviderError::InvalidValue { key, message } => ProviderError::InvalidValue {
            key: key.clone(),
            message: message.clone(),
        },
        ProviderError::Transport(m) => ProviderError::Transport(m.clone()),
        ProviderError::Kube(e) => ProviderError::Transport(format!("kubernetes API: {e}")),
        ProviderError::Policy { field, message } => ProviderError::Policy {
            field: field.clone(),
            message: message.clone(),
        },
    }
}

/// A copy of a read's result.
pub(crate) fn duplicate_result(
    r: &Result<crate::value::SecretValue, ProviderError>,
) -> Result<crate::value::SecretValue, ProviderError> {
    match r {
        Ok(v) => Ok(v.clone()),
        Err(e) => Err(duplicate(e)),
    }
}

/// The same error for another key (a batch-wide failure answers every key of the batch).
pub(crate) fn for_key(e: &ProviderError, key: &str) -> ProviderError {
    match e {
        ProviderError::NotFound { .. } => ProviderError::NotFound { key: key.to_string() },
        other => duplicate(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_conditions() {
        let nf = from_code(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
            Some(400),
            "db",
            None,
        );
        assert!(matches!(nf, ProviderError::NotFound { ref key } if key == "db"));
        for code in ["ParameterNotFound", "ParameterVersionNotFound"] {
            assert!(from_code(code, "Parameter /db not found.", Some(400), "/db", None).is_not_found());
        }
        let deleted = from_code(
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
            Some(400),
            "db",
            None,
        );
        assert!(deleted.is_not_found());
        let other_invalid = from_code("InvalidRequestException", "bad version", Some(400), "db", None);
        assert!(matches!(other_invalid, ProviderError::Transport(_)));
        assert!(matches!(
            from_code("AccessDeniedException", "User: x is not authorized", Some(400), "db", None),
            ProviderError::AccessDenied(ref m) if m == "AccessDeniedException: User: x is not authorized"
        ));
        assert!(matches!(
            from_code(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                Some(400),
                "db",
                None
            ),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            from_code("SignatureDoesNotMatch", "", Some(403), "db", None),
            ProviderError::Auth(ref m) if m == "SignatureDoesNotMatch"
        ));
        let t = from_code(
            "ThrottlingException",
            "Rate exceeded",
            Some(400),
            "db",
            Some(Duration::from_secs(2)),
        );
        assert_eq!(t.retry_after(), Some(Duration::from_secs(2)));
        assert!(matches!(
            from_code("", "", Some(429), "db", None),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            from_code("", "", Some(403), "db", None),
            ProviderError::AccessDenied(_)
        ));
        assert!(matches!(
            from_code("InternalServiceError", "", Some(500), "db", None),
            ProviderError::Transport(_)
        ));
    }

    #[test]
    fn messages_lose_request_ids_and_credential_scopes() {
        assert_eq!(
            sanitize("AccessDenied: not allowed, request id: 1234-abcd, more"),
            "AccessDenied: not allowed,  more".trim()
        );
        assert_eq!(
            sanitize("SignatureDoesNotMatch: bad signature Credential=AKIA/20260101/us-east-1/sts/aws4_request"),
            "SignatureDoesNotMatch: bad signature"
        );
    }

    #[test]
    fn xml_error_bodies_are_read() {
        let body = r#"<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code>
            <Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>"#;
        assert_eq!(xml_element(body, "Code").as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("The security token included in the request is invalid.")
        );
        assert_eq!(xml_element("{}", "Code"), None);
    }

    #[test]
    fn a_denied_probe_still_validates() {
        use crate::client::Validation;
        assert_eq!(validation(Ok(())).unwrap(), Validation::Ready);
        assert_eq!(
            validation::<()>(Err(ProviderError::AccessDenied("x".into()))).unwrap(),
            Validation::Ready
        );
        assert!(validation::<()>(Err(ProviderError::Auth("x".into()))).is_err());
    }

    #[test]
    fn batch_errors_are_rekeyed() {
        let e = ProviderError::NotFound { key: "a".into() };
        assert!(matches!(for_key(&e, "b"), ProviderError::NotFound { ref key } if key == "b"));
        let d = ProviderError::AccessDenied("x".into());
        assert!(matches!(for_key(&d, "b"), ProviderError::AccessDenied(ref m) if m == "x"));
    }
}
