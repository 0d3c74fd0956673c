//! Pure placement: which namespace belongs to which shard, and which live replica should hold which unit.
//!
//! Both are computed by every replica from what it sees; they must agree across processes and across versions of
//! syncret (a rolling update runs two at once), so the hash is FNV-1a 64 over the bytes, never `std`'s
//! `DefaultHasher` (whose algorithm Rust does not promise to keep).

/// FNV-1a, 64 bits: stable across processes, architectures and Rust versions.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// The shard of a namespace: every ExternalSecret and PushSecret of a namespace (and so its reads, its
/// ClusterExternalSecret children) land in the same shard. `shards` ≥ 1.
pub fn shard_of(namespace: &str, shards: u32) -> u32 {
    let n = u64::from(shards.max(1));
    // `n` ≤ u32::MAX, so the remainder fits.
    u32::try_from(fnv1a(&[namespace.as_bytes()]) % n).unwrap_or(0)
}

/// Which member (index into `members`) should hold each of `units` units; `None` when there are no members.
///
/// Rendezvous (highest-random-weight) hashing, balanced: each unit ranks the members by `fnv1a(member, unit)`
/// and goes to the first that has room: every member gets ⌊units / members⌋ or ⌈units / members⌉. The result
/// depends only on the set of member identities (not their order), and a member joining or leaving moves few
/// units besides its own (measured in the tests: a member leaving 3 keeps ~90% of the others' units where they
/// were; one joining 3 moves ~5 of 17 units where 4 must move).
pub fn assign(units: u32, members: &[&str]) -> Vec<Option<usize>> {
    let m = members.len();
    if m == 0 {
        return vec![None; units as usize];
    }
    let u = units as usize;
    // Each member takes `floor` units, and `extra` of them one more.
    let (floor, extra) = (u / m, u % m);
    let mut at_ceiling = 0usize;
    // Members in a canonical order, so the outcome does not depend on the order they were listed in.
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| members[*a].cmp(members[*b]));
    let mut load = vec![0usize; m];
    let mut out = vec![None; u];
    // Units with the strongest first preference are placed first, so a preference is overridden (by capacity)
    // only where it is weak; ties broken by unit number.
    let ranked: Vec<Vec<usize>> = (0..units)
        .map(|unit| {
            let key = unit.to_le_bytes();
            let mut r = order.clone();
            r.sort_by_key(|i| std::cmp::Reverse(fnv1a(&[members[*i].as_bytes(), &key])));
            r
        })
        .collect();
    let mut units_by_strength: Vec<usize> = (0..u).collect();
    units_by_strength.sort_by_key(|unit| {
        let first = ranked[*unit][0];
        (
            std::cmp::Reverse(fnv1a(&[members[first].as_bytes(), &(*unit as u32).to_le_bytes()])),
            *unit,
        )
    });
    for unit in units_by_strength {
        let room = |i: &usize| load[*i] < floor || (load[*i] == floor && at_ceiling < extra);
        if let Some(i) = ranked[unit].iter().copied().find(room) {
            load[i] += 1;
            if load[i] > floor {
                at_ceiling += 1;
            }
            out[unit] = Some(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_stable_and_spreads_namespaces() {
        // Fixed values: a change here moves every namespace of every installed cluster to another shard.
        assert_eq!(fnv1a(&[b"default"]), 0x98d4_8645_e9ae_c0b3);
        assert_eq!(shard_of("default", 16), 3);
        assert_eq!(shard_of("default", 16), shard_of("default", 16));
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("anything", 0), 0, "0 shards is treated as 1");
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[shard_of(&format!("team-{i}"), 8) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }

    fn owners(units: u32, members: &[&str]) -> Vec<String> {
        assign(units, members)
            .into_iter()
            .map(|o| o.map(|i| members[i].to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn balanced_and_independent_of_member_order() {
        for m in 1..=7usize {
            let names: Vec<String> = (0..m).map(|i| format!("syncret-{i}_{:016x}", i * 7919)).collect();
            let members: Vec<&str> = names.iter().map(String::as_str).collect();
            for units in [1u32, 2, 5, 16, 17, 64] {
                let got = owners(units, &members);
                assert!(got.iter().all(|o| !o.is_empty()), "every unit has an owner");
                let mut load = std::collections::HashMap::<&str, usize>::new();
                for o in &got {
                    *load.entry(o.as_str()).or_default() += 1;
                }
                let max = load.values().max().copied().unwrap_or(0);
                let min = if load.len() < m.min(units as usize) {
                    0
                } else {
                    load.values().min().copied().unwrap_or(0)
                };
                assert!(max - min <= 1, "units {units}, members {m}: {load:?}");
                let mut reversed = members.clone();
                reversed.reverse();
                assert_eq!(owners(units, &reversed), got, "order of members does not matter");
            }
        }
        assert_eq!(assign(3, &[]), vec![None, None, None]);
    }

    #[test]
    fn a_member_leaving_or_joining_moves_few_other_units() {
        let (mut kept, mut survivors, mut moved) = (0usize, 0usize, 0usize);
        let sets = 50;
        for k in 0..sets {
            let names: Vec<String> = (0..4)
                .map(|i| format!("syncret-{i}_{:016x}", (k * 4 + i) * 7919))
                .collect();
            let ids: Vec<&str> = names.iter().map(String::as_str).collect();
            let before = owners(17, &ids[..3]);
            // The third leaves: the units of the other two mostly stay where they were.
            let after = owners(17, &ids[..2]);
            for (b, a) in before.iter().zip(&after) {
                if b != ids[2] {
                    survivors += 1;
                    kept += usize::from(b == a);
                }
            }
            // A fourth joins: it must take 4 of 17; few others move besides.
            let grown = owners(17, &ids);
            moved += before.iter().zip(&grown).filter(|(b, g)| b != g).count();
        }
        assert!(kept * 10 >= survivors * 8, "kept {kept} of {survivors}");
        assert!(
            moved <= sets * 6,
            "moved {moved} in {sets} joins (at least {} needed)",
            sets * 4
        );
    }
}
