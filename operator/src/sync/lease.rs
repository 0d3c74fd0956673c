//! What to do with leased values (a VaultDynamicSecret's credentials), decided from the lease alone: renew it in
//! place while renewals can extend it, else rotate it (make new values, write them, then revoke the superseded
//! lease) before it ends. And when a GeneratorState's time is up. Pure: time is passed in.
use chrono::{DateTime, Duration, Utc};
use syncret_providers::Lease;

/// The next step for a lease in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// Renew it (`sys/leases/renew`) at this time.
    Renew(DateTime<Utc>),
    /// Make new values (written first; the superseded lease is revoked afterwards) at this time.
    Rotate(DateTime<Utc>),
}

impl LeaseStep {
    pub fn at(self) -> DateTime<Utc> {
        match self {
            LeaseStep::Renew(t) | LeaseStep::Rotate(t) => t,
        }
    }
}

/// The least time kept before a lease's end (a lease of a second still gets a step before it ends).
const MIN_MARGIN: Duration = Duration::seconds(1);

/// Act when a third of the lease period is left (at two thirds of a fresh lease): renew, while a renewal can
/// give a whole lease period again (the lease is renewable, the last renewal was not cut short by its max TTL,
/// and the token that created it, which Vault ends the token's leases with, lives at least one more period);
/// otherwise rotate. The time is fixed by the lease's end, not by when it is looked at (a plan of "two thirds of
/// what is left", recomputed at each look, would never arrive before the end). Already due: `now`.
pub fn plan(lease: &Lease, now: DateTime<Utc>) -> LeaseStep {
    let end = lease.hard_end();
    let left = (end - now).max(Duration::zero());
    let period = Duration::seconds(
        i64::try_from(lease.duration_seconds)
            .unwrap_or(i64::MAX / 2)
            .min(i64::MAX / 2),
    );
    let margin = (period / 3).max(MIN_MARGIN);
    let at = end.checked_sub_signed(margin).unwrap_or(now).max(now);
    let token_lasts = lease
        .token_expire_time
        .is_none_or(|t| now.checked_add_signed(period).is_none_or(|p| t >= p));
    if lease.renewable && !lease.capped && token_lasts && left > Duration::zero() {
        LeaseStep::Renew(at)
    } else {
        LeaseStep::Rotate(at)
    }
}

/// What the GeneratorState controller does with one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateStep {
    /// Being deleted: clean up (revoke its lease), then release the finalizer.
    CleanUp,
    /// Superseded and past its garbage-collection deadline: delete it.
    Delete,
    /// Superseded: look again at the deadline.
    WaitForDeadline(DateTime<Utc>),
    /// Current, with a lease: renew or rotate per [`plan`].
    Lease(LeaseStep),
    /// Current, nothing to do.
    Idle,
}

/// The step for a state: `deleting` (has a deletion timestamp), its GC deadline, its lease.
pub fn state_step(
    deleting: bool,
    deadline: Option<DateTime<Utc>>,
    lease: Option<&Lease>,
    now: DateTime<Utc>,
) -> StateStep {
    if deleting {
        return StateStep::CleanUp;
    }
    match (deadline, lease) {
        (Some(d), _) if d <= now => StateStep::Delete,
        (Some(d), _) => StateStep::WaitForDeadline(d),
        (None, Some(l)) => StateStep::Lease(plan(l, now)),
        (None, None) => StateStep::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn lease(expire: i64, duration: u64) -> Lease {
        Lease {
            lease_id: "pki/issue/r/x".into(),
            renewable: true,
            duration_seconds: duration,
            expire_time: t(expire),
            capped: false,
            token_accessor: Some("a".into()),
            token_expire_time: None,
        }
    }

    #[test]
    fn renewed_at_two_thirds_while_renewals_extend_it() {
        assert_eq!(plan(&lease(90, 90), t(0)), LeaseStep::Renew(t(60)));
        // Looked at again when due (or later): due now, not two thirds of what is left.
        assert_eq!(plan(&lease(90, 90), t(60)), LeaseStep::Renew(t(60)));
        assert_eq!(plan(&lease(90, 90), t(70)), LeaseStep::Renew(t(70)));
        assert_eq!(plan(&lease(90, 90), t(30)), LeaseStep::Renew(t(60)));
        // A token that outlives another period does not stop renewal.
        let mut l = lease(90, 90);
        l.token_expire_time = Some(t(3600));
        assert_eq!(plan(&l, t(0)), LeaseStep::Renew(t(60)));
    }

    #[test]
    fn rotated_when_renewal_cannot_extend_it() {
        let mut capped = lease(90, 90);
        capped.capped = true;
        assert_eq!(plan(&capped, t(0)), LeaseStep::Rotate(t(60)));
        let mut fixed = lease(90, 90);
        fixed.renewable = false;
        assert_eq!(plan(&fixed, t(30)), LeaseStep::Rotate(t(60)));
        assert_eq!(plan(&fixed, t(59)), LeaseStep::Rotate(t(60)));
        // The token that created it (after a restart nobody renews it) ends first: rotate before it does.
        let mut orphan = lease(90, 90);
        orphan.token_expire_time = Some(t(60));
        assert_eq!(plan(&orphan, t(0)), LeaseStep::Rotate(t(30)));
        // Already over: rotate now.
        assert_eq!(plan(&lease(10, 90), t(20)), LeaseStep::Rotate(t(20)));
        // A tiny lease: a second before its end (the shell waits at least a second between steps).
        assert_eq!(plan(&lease(1, 1), t(0)), LeaseStep::Renew(t(0)));
        assert_eq!(plan(&lease(10, 3), t(0)), LeaseStep::Renew(t(9)));
    }

    #[test]
    fn states_are_cleaned_up_deleted_waited_for_or_renewed() {
        let l = lease(90, 90);
        assert_eq!(state_step(true, Some(t(0)), Some(&l), t(5)), StateStep::CleanUp);
        assert_eq!(state_step(false, Some(t(0)), Some(&l), t(5)), StateStep::Delete);
        assert_eq!(
            state_step(false, Some(t(10)), None, t(5)),
            StateStep::WaitForDeadline(t(10))
        );
        assert_eq!(
            state_step(false, None, Some(&l), t(0)),
            StateStep::Lease(LeaseStep::Renew(t(60)))
        );
        assert_eq!(state_step(false, None, None, t(0)), StateStep::Idle);
    }
}
