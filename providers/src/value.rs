//! Secret values, wrapped so they never reach a log, an event or an error message by accident.
use std::fmt;

use bytes::Bytes;

/// The bytes of a secret value. `Debug` prints only the length; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct SecretValue(Bytes);

impl SecretValue {
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value as UTF-8 text, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted {} bytes>)", self.0.len())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(v: Vec<u8>) -> Self {
        Self(Bytes::from(v))
    }
}

impl From<String> for SecretValue {
    fn from(v: String) -> Self {
        Self(Bytes::from(v))
    }
}

impl From<&str> for SecretValue {
    fn from(v: &str) -> Self {
        Self(Bytes::copy_from_slice(v.as_bytes()))
    }
}

impl From<&[u8]> for SecretValue {
    fn from(v: &[u8]) -> Self {
        Self(Bytes::copy_from_slice(v))
    }
}

/// What a provider returns for one remote secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteValue {
    /// An opaque value (often JSON text).
    Bytes(SecretValue),
    /// A secret that is natively a map of binary values (a Kubernetes Secret): a `property` naming a key
    /// returns its bytes exactly; anything else sees the map as a JSON object of strings, as ESO does.
    Map(std::collections::BTreeMap<String, SecretValue>),
    /// A secret whose `property` and `dataFrom.extract` rules are the provider's own (a 1Password item's field
    /// labels, Doppler's ignored property). The whole remote secret is read once; the rules apply afterwards,
    /// so reads of one secret for several properties are one read.
    Custom(CustomValue),
}

/// The rules of a [`RemoteValue::Custom`]. Errors name the key and property, never a value.
pub trait Select: Send + Sync {
    /// The value `property` selects (`None`: the provider's default).
    fn select(&self, key: &str, property: Option<&str>) -> crate::Result<SecretValue>;
    /// `dataFrom.extract`: the key/value pairs (after `property`).
    fn extract(
        &self,
        key: &str,
        property: Option<&str>,
    ) -> crate::Result<std::collections::BTreeMap<String, SecretValue>>;
}

/// A shared [`Select`]. Equal when it is the same value (it is only compared to detect changes of one read).
#[derive(Clone)]
pub struct CustomValue(pub std::sync::Arc<dyn Select>);

impl CustomValue {
    pub fn new(value: impl Select + 'static) -> Self {
        Self(std::sync::Arc::new(value))
    }
}

impl PartialEq for CustomValue {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CustomValue {}

impl fmt::Debug for CustomValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomValue(<redacted>)")
    }
}

impl From<SecretValue> for RemoteValue {
    fn from(v: SecretValue) -> Self {
        RemoteValue::Bytes(v)
    }
}

/// Any value (a token, a password) that must not be printed: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Unloggable<T>(pub T);

impl<T> fmt::Debug for Unloggable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> std::ops::Deref for Unloggable<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::from("hunter2");
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted 7 bytes>)");
        assert_eq!(format!("{:?}", Unloggable("hunter2")), "<redacted>");
    }
}
