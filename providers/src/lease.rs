//! A provider lease on a value handed out (a Vault/OpenBao dynamic secret): what the operator needs to renew it in
//! place, to know when it ends for good, and to revoke it once superseded. Serialized into a `GeneratorState`'s
//! `spec.state`, so it survives operator restarts.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The provider's lease id (`database/creds/app/…`).
    pub lease_id: String,
    /// Whether the provider accepts renewals.
    pub renewable: bool,
    /// The lease duration granted when the value was made, in seconds: the increment each renewal asks for.
    pub duration_seconds: u64,
    /// When the lease ends unless renewed.
    pub expire_time: DateTime<Utc>,
    /// The last renewal was granted less than it asked for: the lease is near its max TTL and will not be extended
    /// much further (time to rotate).
    #[serde(default)]
    pub capped: bool,
    /// Accessor of the token that created the lease (Vault revokes a token's leases with the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_accessor: Option<String>,
    /// When that token ends as far as we know (`None`: it does not expire). The lease ends then too, whatever its
    /// own TTL, unless the token is renewed meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expire_time: Option<DateTime<Utc>>,
}

impl Lease {
    /// When the value stops working: the lease's end, or its token's if sooner.
    pub fn hard_end(&self) -> DateTime<Utc> {
        match self.token_expire_time {
            Some(t) if t < self.expire_time => t,
            _ => self.expire_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_can_end_a_lease_early() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let mut l = Lease {
            lease_id: "pki/issue/x/abc".into(),
            renewable: true,
            duration_seconds: 60,
            expire_time: t(1000),
            capped: false,
            token_accessor: Some("acc".into()),
            token_expire_time: None,
        };
        assert_eq!(l.hard_end(), t(1000));
        l.token_expire_time = Some(t(900));
        assert_eq!(l.hard_end(), t(900));
        l.token_expire_time = Some(t(2000));
        assert_eq!(l.hard_end(), t(1000));
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["leaseId"], "pki/issue/x/abc");
        assert_eq!(serde_json::from_value::<Lease>(json).unwrap(), l);
    }
}
