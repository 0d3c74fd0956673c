//! Reading a response body with a budget: at most [`Limits::bytes`] bytes are buffered (a larger `Content-Length`
//! fails before reading, an endless body fails once it passes the cap), every buffered block is charged to the
//! operator-wide [`Budget`] first (so many reads at once cannot add up to more), and JSON is parsed only after a
//! scan has counted its values, so a small body cannot turn into a large tree (`[0,0,0,…]` is 2 bytes a value on
//! the wire and 32 or more once parsed).
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

/// The bytes all provider answers being read at once may hold, together: each read charges the budget before it
/// buffers a block, and a read that finds it spent fails (and is retried with backoff) instead of growing the
/// process. One per operator (in [`crate::TenantPolicy`]); cheap to clone.
#[derive(Clone, Debug)]
pub struct Budget {
    blocks: std::sync::Arc<tokio::sync::Semaphore>,
    bytes: usize,
}

/// The unit the budget is charged in.
const BLOCK: usize = 64 << 10;

/// The default budget: four answers at the size cap.
pub const DEFAULT_BUDGET_BYTES: usize = 4 * MAX_RESPONSE_BYTES;

impl Budget {
    pub fn new(bytes: usize) -> Self {
        let blocks = (bytes / BLOCK).clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            blocks: std::sync::Arc::new(tokio::sync::Semaphore::new(blocks)),
            bytes,
        }
    }

    /// The bytes not charged right now (for tests and diagnostics).
    pub fn available(&self) -> usize {
        self.blocks.available_permits().saturating_mul(BLOCK)
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

/// A body being read: the chunks so far (kept as they arrive: no buffer is doubled, and an answer refused at the cap
/// never becomes one large allocation), the cap, and what it holds of the [`Budget`] (given back when dropped).
pub struct Buffer {
    chunks: Vec<Bytes>,
    len: usize,
    limit: usize,
    budget: Budget,
    held: Option<tokio::sync::OwnedSemaphorePermit>,
    held_blocks: usize,
}

impl Buffer {
    pub fn new(limit: usize, budget: &Budget) -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
            limit,
            budget: budget.clone(),
            held: None,
            held_blocks: 0,
        }
    }

    /// Appends `chunk` unless that would pass the cap or the budget (charged before the chunk is kept).
    pub fn append(&mut self, chunk: Bytes) -> Result<(), BodyError> {
        let len = match self.len.checked_add(chunk.len()) {
            Some(n) if n <= self.limit => n,
            _ => return Err(BodyError::TooLarge { limit: self.limit }),
        };
        self.charge(len)?;
        self.len = len;
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
        Ok(())
    }

    /// Holds enough of the budget for `bytes` in all.
    fn charge(&mut self, bytes: usize) -> Result<(), BodyError> {
        let need = bytes.div_ceil(BLOCK);
        if need <= self.held_blocks {
            return Ok(());
        }
        let more = u32::try_from(need - self.held_blocks).map_err(|_| BodyError::TooLarge { limit: self.limit })?;
        let permit = self
            .budget
            .blocks
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| BodyError::Busy {
                budget: self.budget.bytes,
            })?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.held_blocks = need;
        Ok(())
    }

    /// The whole body, in one piece. The budget is given back: what the caller keeps is one answer it parses and
    /// drops.
    pub fn finish(mut self) -> Bytes {
        if self.chunks.len() == 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        let mut whole = BytesMut::with_capacity(self.len);
        for c in &self.chunks {
            whole.extend_from_slice(c);
        }
        whole.freeze()
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
    #[error(
        "the answers being read hold the operator's whole budget for provider answers ({}); will retry",
        human(*.budget)
    )]
    Busy { budget: usize },
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

/// Reads a whole `http_body` body, at most `limit` bytes, charged to `budget`.
#[cfg(any(feature = "azure", feature = "kubernetes"))]
pub async fn read<B>(body: B, limit: usize, budget: &Budget) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    use bytes::Buf as _;
    use http_body_util::BodyExt as _;
    check_length(http_body::Body::size_hint(&body).exact(), limit)?;
    let mut body = std::pin::pin!(body);
    let mut buf = Buffer::new(limit, budget);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(mut data) = frame.into_data() {
            let n = data.remaining();
            buf.append(data.copy_to_bytes(n))?;
        }
    }
    Ok(buf.finish())
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
        let budget = Budget::default();
        let mut buf = Buffer::new(8, &budget);
        buf.append(Bytes::from_static(b"123")).unwrap();
        buf.append(Bytes::from_static(b"45")).unwrap();
        assert_eq!(
            buf.append(Bytes::from_static(b"6789")),
            Err(BodyError::TooLarge { limit: 8 })
        );
        assert_eq!(&buf.finish()[..], b"12345", "nothing of a refused chunk is kept");
        assert_eq!(
            BodyError::TooLarge { limit: 16 << 20 }.to_string(),
            "the response is larger than the limit of 16 MiB (syncret reads at most that much of a provider's answer)"
        );
    }

    #[test]
    fn reads_share_one_budget() {
        let budget = Budget::new(4 * BLOCK);
        let block = |n: usize| Bytes::from(vec![0u8; n]);
        let mut a = Buffer::new(MAX_RESPONSE_BYTES, &budget);
        a.append(block(3 * BLOCK)).unwrap();
        assert_eq!(budget.available(), BLOCK);
        let mut b = Buffer::new(MAX_RESPONSE_BYTES, &budget);
        b.append(block(10)).unwrap();
        assert_eq!(
            b.append(block(BLOCK)),
            Err(BodyError::Busy { budget: 4 * BLOCK }),
            "the budget is spent"
        );
        drop(a.finish());
        assert_eq!(budget.available(), 3 * BLOCK, "a finished read gives its share back");
        b.append(block(BLOCK)).unwrap();
        drop(b);
        assert_eq!(budget.available(), 4 * BLOCK);
    }

    #[cfg(any(feature = "azure", feature = "kubernetes"))]
    #[tokio::test]
    async fn bodies_are_read_up_to_the_cap() {
        let budget = Budget::default();
        let full = http_body_util::Full::new(Bytes::from_static(b"hello"));
        assert_eq!(read(full, 5, &budget).await.unwrap(), Bytes::from_static(b"hello"));
        let full = http_body_util::Full::new(Bytes::from_static(b"hello!"));
        assert_eq!(read(full, 5, &budget).await, Err(BodyError::TooLarge { limit: 5 }));
        // A body of unknown length, streamed: stops at the cap.
        let chunks = futures::stream::iter(
            std::iter::repeat_with(|| {
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"0123456789")))
            })
            .take(1000),
        );
        let body = http_body_util::StreamBody::new(chunks);
        assert_eq!(read(body, 95, &budget).await, Err(BodyError::TooLarge { limit: 95 }));
        assert_eq!(
            budget.available(),
            DEFAULT_BUDGET_BYTES,
            "nothing held after a failed read"
        );
    }
}
