//! The pure PushSecret core: from a PushSecret, its source Secret(s) and the stores it resolved to, what is pushed
//! where ([`entries`]), what the source looks like after `spec.template` ([`template`]), when to push again
//! ([`refresh`]), which remote values two PushSecrets share so one never deletes what another still pushes
//! ([`guard`], ESO #5062), and which Secrets wake which PushSecrets ([`sources`]). No I/O here; the controller in
//! [`crate::controller::pushsecret`] gathers inputs and applies outputs.
pub mod entries;
pub mod error;
pub mod guard;
pub mod refresh;
pub mod sources;
pub mod status;
pub mod template;

/// A JSON merge patch (RFC 7386) turning `old` into `new`: members only in `old` become `null`, so a status
/// patch removes entries of `syncedPushSecrets` that are gone instead of merging the maps.
pub fn merge_patch(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) => {
                        out.insert(k.clone(), merge_patch(ov, nv));
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            Value::Object(out)
        }
        (_, n) => n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_what_is_gone() {
        let old = json!({"a": 1, "m": {"s1": {"k1": {"x": 1}, "k2": {}}, "s2": {"k": {}}}, "l": [1, 2]});
        let new = json!({"a": 1, "m": {"s1": {"k1": {"x": 1}}}, "l": [3], "b": "n"});
        let p = merge_patch(&old, &new);
        assert_eq!(p, json!({"m": {"s1": {"k2": null}, "s2": null}, "l": [3], "b": "n"}));
    }
}
