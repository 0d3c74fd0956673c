//! Secret key names: `conversionStrategy` (Default, Unicode) and the final key check ESO applies.

/// `conversionStrategy` of `dataFrom` entries (used when they have no `rewrite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Conversion {
    #[default]
    Default,
    Unicode,
}

fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// Replaces characters a Secret key cannot hold: with `_` (Default) or `_UXXXX_` (Unicode).
pub fn convert(strategy: Conversion, key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            match strategy {
                Conversion::Default => out.push('_'),
                Conversion::Unicode => out.push_str(&format!("_U{:04x}_", c as u32)),
            }
        }
    }
    out
}

/// ESO's key check after rewrite/conversion; empty keys are dropped by the caller. The message names the key
/// (keys are not secret) and hints at the fix.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.len() > 253 {
        return Err(format!(
            "key has length {} but max is 253; use rewrite or conversionStrategy",
            key.len()
        ));
    }
    if let Some(c) = key.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "key {key:?} has invalid character {c:?}, only alphanumeric, '-', '.' and '_' are allowed; use rewrite or \
             conversionStrategy"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_eso() {
        assert_eq!(convert(Conversion::Default, "a/b c.d-e_f"), "a_b_c.d-e_f");
        assert_eq!(convert(Conversion::Unicode, "a/b"), "a_U002f_b");
        assert_eq!(convert(Conversion::Unicode, "x😀"), "x_U1f600_");
        assert_eq!(convert(Conversion::Default, "ünï"), "ünï");
    }

    #[test]
    fn validates() {
        assert!(validate_key("db.password-1_x").is_ok());
        assert!(validate_key("a/b").unwrap_err().contains("'/'"));
        assert!(validate_key(&"a".repeat(254)).is_err());
    }
}
