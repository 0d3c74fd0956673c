//! Recovering a document's data key with the keys a store names.
//!
//! SOPS wraps the 256-bit data key with every master key of the document. With one key group, any one master
//! key gives the data key. With several groups the data key is split with Shamir's scheme
//! (`shamir_threshold` of the groups are needed): each group's master keys wrap that group's share, so one key
//! per group recovers the share and `threshold` shares rebuild the key.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::SopsError;
use super::agekey::{self, Unwrapped};
use super::cipher::DataKey;
use super::metadata::{MasterKey, Metadata};
use super::shamir;
use crate::error::ProviderError;

/// Why one master key did not give its data key.
#[derive(Debug)]
pub enum Failure {
    /// The key is not ours, or the KMS refused it (wrong key, no permission): try the next.
    Refused(String),
    /// The KMS could not be asked (network, throttling): worth a retry later.
    Unavailable(ProviderError),
}

/// One source of data keys: the age identities of one Secret, or one KMS with its auth.
#[async_trait]
pub trait Unwrapper: Send + Sync {
    /// The store field that configures it, for messages (`spec.provider.sops.keys.age[0]`).
    fn field(&self) -> &str;
    /// Whether it can try this master key.
    fn handles(&self, key: &MasterKey) -> bool;
    /// The data key (or share) `key` wraps.
    async fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, Failure>;
}

/// age identities from one Secret key.
pub struct AgeIdentities {
    pub field: String,
    pub identities: Vec<age::x25519::Identity>,
}

#[async_trait]
impl Unwrapper for AgeIdentities {
    fn field(&self) -> &str {
        &self.field
    }

    fn handles(&self, key: &MasterKey) -> bool {
        matches!(key, MasterKey::Age { .. })
    }

    async fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, Failure> {
        // X25519 is CPU work: off the async workers when there are some (`syncret render` has no runtime).
        let unwrapped = if tokio::runtime::Handle::try_current().is_ok() {
            let enc = key.enc().to_string();
            let identities = self.identities.clone();
            tokio::task::spawn_blocking(move || agekey::unwrap(&enc, &identities))
                .await
                .map_err(|_| Failure::Refused("the age decryption task failed".into()))?
        } else {
            agekey::unwrap(key.enc(), &self.identities)
        };
        match unwrapped {
            Unwrapped::Key(k) => Ok(k),
            Unwrapped::NotForUs => Err(Failure::Refused("none of its identities is this recipient".into())),
            Unwrapped::Invalid(why) => Err(Failure::Refused(why.into())),
        }
    }
}

/// The keys of one store.
#[derive(Default)]
pub struct KeyRing {
    pub base: String,
    pub unwrappers: Vec<Box<dyn Unwrapper>>,
}

/// Recovered data keys, by a hash of the wrapped keys that gave them, so an unchanged document (or another
/// document encrypted with the same data key) costs no KMS call. One cache per store client: a store never
/// reuses a key another store recovered.
pub struct KeyCache {
    entries: Mutex<VecDeque<([u8; 32], DataKey)>>,
    capacity: usize,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    /// The cache key of a document's key material: every group's master keys and wrapped keys, and the
    /// threshold.
    pub fn id(meta: &Metadata) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(meta.threshold.to_le_bytes());
        for group in &meta.groups {
            h.update(b"\x00group");
            for k in group {
                for part in [k.describe(), k.enc().to_string()] {
                    h.update(part.len().to_le_bytes());
                    h.update(part.as_bytes());
                }
            }
        }
        h.finalize().into()
    }

    pub fn get(&self, id: &[u8; 32]) -> Option<DataKey> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().find(|(k, _)| k == id).map(|(_, v)| v.clone())
    }

    pub fn put(&self, id: [u8; 32], key: DataKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != id);
        while entries.len() >= self.capacity.max(1) {
            entries.pop_front();
        }
        entries.push_back((id, key));
    }
}

fn to_data_key(bytes: &[u8]) -> Option<DataKey> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(Zeroizing::new(arr))
}

impl KeyRing {
    fn keys_field(&self) -> String {
        format!("{}.keys", self.base)
    }

    /// The data key of a document whose metadata is `meta`; `doc` names the document in messages.
    pub async fn data_key(&self, meta: &Metadata, doc: &str) -> Result<DataKey, SopsError> {
        let groups = meta.groups.len();
        let need = if groups <= 1 { 1 } else { meta.threshold };
        let mut shares: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut refused: Vec<String> = Vec::new();
        let mut fields: Vec<&str> = Vec::new();
        let mut unavailable: Option<ProviderError> = None;
        for group in &meta.groups {
            if shares.len() >= need {
                break;
            }
            'group: for mk in group {
                for u in self.unwrappers.iter().filter(|u| u.handles(mk)) {
                    if !fields.contains(&u.field()) {
                        fields.push(u.field());
                    }
                    match u.unwrap(mk).await {
                        Ok(k) => {
                            shares.push(k);
                            break 'group;
                        }
                        Err(Failure::Refused(why)) => refused.push(format!("{}: {why}", mk.describe())),
                        Err(Failure::Unavailable(e)) => {
                            refused.push(format!("{}: {e}", mk.describe()));
                            unavailable.get_or_insert(e);
                        }
                    }
                }
            }
        }
        if shares.len() >= need {
            let key = if need == 1 {
                to_data_key(&shares[0])
            } else {
                let parts: Vec<Vec<u8>> = shares.iter().take(need).map(|s| s.to_vec()).collect();
                let combined =
                    Zeroizing::new(shamir::combine(&parts).map_err(|e| {
                        SopsError::format(format!("{doc}: the key groups' shares do not combine: {e}"))
                    })?);
                to_data_key(&combined)
            };
            return key.ok_or_else(|| SopsError::format(format!("{doc}: the recovered data key is not 32 bytes")));
        }
        if let Some(e) = unavailable {
            return Err(SopsError::Provider(e));
        }
        let wrapped: Vec<String> = meta.groups.iter().flatten().map(MasterKey::describe).collect();
        let shown = wrapped.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
        let more = if wrapped.len() > 8 {
            format!(" and {} more", wrapped.len() - 8)
        } else {
            String::new()
        };
        let groups_note = if groups > 1 {
            format!(
                " (recovered {} of the {need} key-group shares it needs, of {groups} groups)",
                shares.len()
            )
        } else {
            String::new()
        };
        let tried = if refused.is_empty() {
            "no key of the store is of a kind the document uses".to_string()
        } else {
            let mut t = refused.iter().take(8).cloned().collect::<Vec<_>>().join("; ");
            if refused.len() > 8 {
                t.push_str("; …");
            }
            t
        };
        let field = match fields.as_slice() {
            [one] => (*one).to_string(),
            _ => self.keys_field(),
        };
        Err(SopsError::NoKey {
            field,
            message: format!(
                "no key of the store decrypts the data key of {doc}{groups_note}: it is encrypted for {shown}{more}; {tried}"
            ),
        })
    }
}

/// Builds the age unwrapper of one Secret's identity file.
pub fn age_identities(field: String, text: &[u8]) -> Result<AgeIdentities, ProviderError> {
    let identities =
        agekey::parse_identities(text).map_err(|e| ProviderError::invalid_config(&field, e.to_string()))?;
    Ok(AgeIdentities { field, identities })
}

/// A shared, type-erased key ring.
pub type SharedKeyRing = Arc<KeyRing>;
