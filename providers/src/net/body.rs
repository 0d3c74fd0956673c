//! Reading a response body with a budget: at most [`Limits::bytes`] bytes are buffered (a larger `Content-Length`
//! fails before reading, an endless body fails once it passes the cap), and JSON is parsed only after a scan has
//! counted its values, so a small body cannot turn into a large tree (`[0,0,0,…]` is 2 bytes a value on the wire
//! and 32 or more once parsed).
use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;

/// The largest response body read by default: a secret, a token answer or a page of a listing is far smaller.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// The most JSON values (and object keys) a response may hold by default: with [`MAX_RESPONSE_BYTES`] this keeps a
/// parsed document around 50 MB at most.
pub const MAX_JSON_VALUES: usize = 1 << 19;

/// The budget of one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub bytes: usize,
    pub json_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            bytes: MAX_RESPONSE_BYTES,
            json_values: MAX_JSON_VALUES,
        }
    }
}

/// Why a body was not accepted. Never carries any of the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the response is larger than the limit of {} (syncret reads at most that much of a provider's answer)", human(*.limit))]
    TooLarge { limit: usize },
    #[error("the JSON response holds more than {limit} values (syncret parses at most that many)")]
    TooManyValues { limit: usize },
    #[error("the response is not the JSON expected (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("reading the response: {0}")]
    Read(String),
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Fails early when a declared `Content-Length` is over the limit.
pub fn check_length(content_length: Option<u64>, limit: usize) -> Result<(), BodyError> {
    match content_length {
        Some(n) if usize::try_from(n).map_or(true, |n| n > limit) => Err(BodyError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// Appends `chunk` to `buf` unless that would pass `limit`.
pub fn append(buf: &mut BytesMut, chunk: &[u8], limit: usize) -> Result<(), BodyError> {
    match buf.len().checked_add(chunk.len()) {
        Some(n) if n <= limit => {
            buf.extend_from_slice(chunk);
            Ok(())
        }
        _ => Err(BodyError::TooLarge { limit }),
    }
}

/// Reads a whole `http_body` body, at most `limit` bytes.
#[cfg(any(feature = "azure", feature = "kubernetes"))]
pub async fn read<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    use bytes::Buf as _;
    use http_body_util::BodyExt as _;
    check_length(http_body::Body::size_hint(&body).exact(), limit)?;
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                let n = chunk.len();
                append(&mut buf, chunk, limit)?;
                data.advance(n);
            }
        }
    }
    Ok(buf.freeze())
}

/// Counts the values of a JSON text (an upper bound: every `{`, `[`, `,` and `:` outside strings, plus one),
/// failing as soon as it passes `limit`. Invalid JSON is left to the parser.
pub fn check_json(text: &[u8], limit: usize) -> Result<(), BodyError> {
    let mut count: usize = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b',' | b':' => {
                count = count.saturating_add(1);
                if count > limit {
                    return Err(BodyError::TooManyValues { limit });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses JSON after [`check_json`]. The parse error names a position only (serde_json's text can quote input).
pub fn json<T: DeserializeOwned>(text: &[u8], limits: Limits) -> Result<T, BodyError> {
    check_json(text, limits.json_values)?;
    serde_json::from_slice(text).map_err(|e| BodyError::Json {
        line: e.line(),
        column: e.column(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_counted_before_parsing() {
        assert!(check_json(br#"{"a":[1,2,3],"b":"x,y:[{"}"#, 8).is_ok());
        assert_eq!(
            check_json(br#"{"a":[1,2,3],"b":"x"}"#, 7),
            Err(BodyError::TooManyValues { limit: 7 })
        );
        // Escaped quotes keep the scanner inside the string.
        assert!(check_json(br#"["a\",\",\",\"", 1]"#, 3).is_ok());
        let bomb = format!("[{}0]", "0,".repeat(100_000));
        assert_eq!(
            json::<serde_json::Value>(
                bomb.as_bytes(),
                Limits {
                    bytes: 1 << 20,
                    json_values: 1000
                }
            ),
            Err(BodyError::TooManyValues { limit: 1000 })
        );
        let v: serde_json::Value = json(br#"{"k":"v"}"#, Limits::default()).unwrap();
        assert_eq!(v["k"], "v");
        let e = json::<serde_json::Value>(br#"{"k": s3cr3t}"#, Limits::default()).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn lengths_and_appends_respect_the_cap() {
        assert!(check_length(Some(10), 10).is_ok());
        assert!(check_length(None, 10).is_ok());
        assert_eq!(check_length(Some(11), 10), Err(BodyError::TooLarge { limit: 10 }));
        assert_eq!(check_length(Some(u64::MAX), 10), Err(BodyError::TooLarge { limit: 10 }));
        let mut buf = BytesMut::new();
        append(&mut buf, b"12345", 8).unwrap();
        assert_eq!(append(&mut buf, b"6789", 8), Err(BodyError::TooLarge { limit: 8 }));
        assert_eq!(&buf[..], b"12345", "nothing of a refused chunk is kept");
        assert_eq!(
            BodyError::TooLarge { limit: 16 << 20 }.to_string(),
            "the response is larger than the limit of 16 MiB (syncret reads at most that much of a provider's answer)"
        );
    }

    #[cfg(any(feature = "azure", feature = "kubernetes"))]
    #[tokio::test]
    async fn bodies_are_read_up_to_the_cap() {
        let full = http_body_util::Full::new(Bytes::from_static(b"hello"));
        assert_eq!(read(full, 5).await.unwrap(), Bytes::from_static(b"hello"));
        let full = http_body_util::Full::new(Bytes::from_static(b"hello!"));
        assert_eq!(read(full, 5).await, Err(BodyError::TooLarge { limit: 5 }));
        // A body of unknown length, streamed: stops at the cap.
        let chunks = futures::stream::iter(
            std::iter::repeat_with(|| {
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"0123456789")))
            })
            .take(1000),
        );
        let body = http_body_util::StreamBody::new(chunks);
        assert_eq!(read(body, 95).await, Err(BodyError::TooLarge { limit: 95 }));
    }
}
