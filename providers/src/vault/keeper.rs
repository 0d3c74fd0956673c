//! Login tokens that created leases, after the client that logged in is gone.
//!
//! Vault revokes every lease created with a token when the token is revoked or expires. A client that is closed
//! (its store changed, it aged out of the cache, it logged in again at its token's max TTL) therefore never revokes
//! a token that created leases: the token moves here, and is renewed whenever one of its leases is renewed, so
//! credentials already written into Secrets keep working. Tokens are dropped (not revoked) once expired; the
//! keeper holds at most [`MAX_KEPT`] of them (the oldest go first: their leases then end with the token, and the
//! lease plan rotates before that, since it knows when the token ends).
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::auth::{self, Action, Token};
use super::http::Http;
use crate::client::{CallObserver, observed};
use crate::error::ProviderError;

/// How many tokens are kept at most.
pub const MAX_KEPT: usize = 256;

struct Kept {
    http: Arc<Http>,
    token: Token,
    namespace: Option<String>,
}

/// See the module docs.
#[derive(Default)]
pub struct TokenKeeper {
    kept: Mutex<VecDeque<Kept>>,
}

impl TokenKeeper {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `token` (which created leases) renewable after its client is gone.
    pub fn keep(&self, http: Arc<Http>, token: Token, namespace: Option<String>) {
        let Some(accessor) = token.accessor.clone() else {
            return;
        };
        let mut kept = self.lock();
        let now = Instant::now();
        kept.retain(|k| k.token.is_live(now) && k.token.accessor.as_deref() != Some(accessor.as_str()));
        if kept.len() >= MAX_KEPT {
            kept.pop_front();
        }
        kept.push_back(Kept { http, token, namespace });
    }

    /// Number of tokens kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// For the kept token with `accessor`: renews it when due and returns when it ends (`Some(None)`: never).
    /// `None` when no such token is kept.
    pub async fn refresh(
        &self,
        accessor: &str,
        observer: &Arc<dyn CallObserver>,
        label: &'static str,
    ) -> Option<Option<DateTime<Utc>>> {
        let (http, token, ns) = {
            let kept = self.lock();
            let k = kept.iter().find(|k| k.token.accessor.as_deref() == Some(accessor))?;
            (k.http.clone(), k.token.clone(), k.namespace.clone())
        };
        let now = Instant::now();
        if token.plan(now) != Action::Renew {
            if !token.is_live(now) {
                self.lock().retain(|k| k.token.accessor.as_deref() != Some(accessor));
            }
            return Some(token.expires_at(now));
        }
        let renewed = observed(observer, label, "RenewSelf", async {
            auth::renew(&http, &token, ns.as_deref())
                .await
                .map_err(|e| ProviderError::Auth(format!("renewing a kept token: {}", e.message)))
        })
        .await;
        let now = Instant::now();
        let fresh = match renewed {
            // A renewal cut short by the max TTL still extends the token as far as it goes.
            Ok((ttl, renewable)) => Token {
                ttl: std::time::Duration::from_secs(ttl),
                at: now,
                renewable,
                ..token
            },
            Err(e) => {
                tracing::info!(provider = label, error = %e, "renewing a token that holds leases failed");
                token
            }
        };
        let end = fresh.expires_at(now);
        let mut kept = self.lock();
        if let Some(k) = kept.iter_mut().find(|k| k.token.accessor.as_deref() == Some(accessor)) {
            k.token = fresh;
        }
        Some(end)
    }
}
