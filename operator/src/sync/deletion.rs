//! What a sync does when the provider returned no data at all: ESO's `deletionPolicy` rules. Pure.
use syncret_crds::externalsecret::{ExternalSecretCreationPolicy, ExternalSecretDeletionPolicy};

use super::error::SyncError;

/// See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenEmpty {
    /// `Delete`: delete the target Secret (if this ExternalSecret owns it).
    DeleteSecret,
    /// `Retain`: leave the Secret as it is; the sync succeeded.
    Retain,
    /// `Merge`: go on and write what there is (nothing of the remote side).
    Write,
}

pub fn when_empty(
    deletion: ExternalSecretDeletionPolicy,
    creation: ExternalSecretCreationPolicy,
    target: &str,
) -> Result<WhenEmpty, SyncError> {
    match deletion {
        ExternalSecretDeletionPolicy::Delete if creation != ExternalSecretCreationPolicy::Owner => {
            Err(SyncError::DeleteNotOwner {
                target: target.to_string(),
                policy: creation,
            })
        }
        ExternalSecretDeletionPolicy::Delete => Ok(WhenEmpty::DeleteSecret),
        ExternalSecretDeletionPolicy::Retain => Ok(WhenEmpty::Retain),
        ExternalSecretDeletionPolicy::Merge => Ok(WhenEmpty::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExternalSecretCreationPolicy as C;
    use ExternalSecretDeletionPolicy as D;

    #[test]
    fn esos_deletion_policy_rules() {
        assert_eq!(when_empty(D::Delete, C::Owner, "t").unwrap(), WhenEmpty::DeleteSecret);
        assert_eq!(when_empty(D::Retain, C::Merge, "t").unwrap(), WhenEmpty::Retain);
        assert_eq!(when_empty(D::Merge, C::Owner, "t").unwrap(), WhenEmpty::Write);
        let e = when_empty(D::Delete, C::Orphan, "t").unwrap_err();
        assert_eq!(
            e.to_string(),
            "could not delete secret: unable to delete secret t: creationPolicy=Orphan is not Owner"
        );
    }
}
