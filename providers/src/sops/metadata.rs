//! The `sops` metadata of a document: the master keys that wrap its data key (in key groups, with a Shamir
//! threshold), the MAC, and the rules that say which values are encrypted.
use regex::{Regex, RegexBuilder};

use super::SopsError;
use super::tree::Node;

/// At most this many key groups, and master keys in a document: a document is tenant input, and each key can
/// cost a KMS call or an X25519 operation.
pub const MAX_GROUPS: usize = 16;
pub const MAX_KEYS: usize = 64;
/// A wrapped data key (an armored age file, a KMS ciphertext) is small; larger ones are refused unread.
pub const MAX_ENC_LEN: usize = 16 * 1024;
/// Compiled size cap of the document's encryption-rule regexes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One master key entry: where a copy (or a Shamir share) of the data key is wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKey {
    Age {
        recipient: String,
        enc: String,
    },
    AwsKms {
        arn: String,
        enc: String,
        /// The encryption context, in document order.
        context: Vec<(String, String)>,
    },
    Vault {
        address: String,
        engine_path: String,
        key_name: String,
        enc: String,
    },
    AzureKv {
        vault_url: String,
        name: String,
        version: String,
        enc: String,
    },
    GcpKms {
        resource_id: String,
        enc: String,
    },
    Pgp {
        fingerprint: String,
    },
}

impl MasterKey {
    /// How the key is named in messages: its kind and public identifier (never the wrapped key).
    pub fn describe(&self) -> String {
        match self {
            MasterKey::Age { recipient, .. } => format!("age {recipient}"),
            MasterKey::AwsKms { arn, .. } => format!("AWS KMS {arn}"),
            MasterKey::Vault {
                address,
                engine_path,
                key_name,
                ..
            } => format!("Vault transit {address} {engine_path}/{key_name}"),
            MasterKey::AzureKv {
                vault_url,
                name,
                version,
                ..
            } => format!("Azure Key Vault {vault_url} key {name}/{version}"),
            MasterKey::GcpKms { resource_id, .. } => format!("GCP KMS {resource_id}"),
            MasterKey::Pgp { fingerprint } => format!("PGP {fingerprint}"),
        }
    }

    /// The wrapped data key (or share); empty for PGP, which syncret does not decrypt.
    pub fn enc(&self) -> &str {
        match self {
            MasterKey::Age { enc, .. }
            | MasterKey::AwsKms { enc, .. }
            | MasterKey::Vault { enc, .. }
            | MasterKey::AzureKv { enc, .. }
            | MasterKey::GcpKms { enc, .. } => enc,
            MasterKey::Pgp { .. } => "",
        }
    }
}

/// Which values of the tree are encrypted (SOPS's `unencrypted_suffix`, `encrypted_suffix`, `unencrypted_regex`,
/// `encrypted_regex`; at most one is set). A rule matches a value when it matches any key on the value's path.
#[derive(Clone, Debug)]
pub enum Rule {
    All,
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

impl Rule {
    /// Whether the value at `path` is encrypted.
    pub fn encrypts(&self, path: &[String]) -> bool {
        match self {
            Rule::All => true,
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(re) => !path.iter().any(|k| re.is_match(k)),
            Rule::EncryptedRegex(re) => path.iter().any(|k| re.is_match(k)),
        }
    }
}

/// The parsed metadata.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub groups: Vec<Vec<MasterKey>>,
    /// Shares needed when there is more than one group.
    pub threshold: usize,
    pub last_modified: String,
    pub mac: String,
    pub rule: Rule,
    pub mac_only_encrypted: bool,
}

fn text(node: Option<&Node>) -> String {
    node.and_then(Node::scalar_text).unwrap_or_default()
}

fn list<'a>(node: &'a Node, key: &str) -> Result<&'a [Node], SopsError> {
    match node.get(key) {
        None | Some(Node::Null) => Ok(&[]),
        Some(Node::List(l)) => Ok(l),
        Some(_) => Err(SopsError::format(format!("sops.{key} is not a list"))),
    }
}

fn entries(group: &Node, at: &str) -> Result<Vec<MasterKey>, SopsError> {
    let mut out = Vec::new();
    let enc = |e: &Node, kind: &str| -> Result<String, SopsError> {
        let enc = text(e.get("enc"));
        if enc.len() > MAX_ENC_LEN {
            return Err(SopsError::format(format!(
                "{at}.{kind}: a wrapped data key is over {MAX_ENC_LEN} bytes"
            )));
        }
        Ok(enc)
    };
    for e in list(group, "age")? {
        out.push(MasterKey::Age {
            recipient: text(e.get("recipient")),
            enc: enc(e, "age")?,
        });
    }
    for e in list(group, "kms")? {
        let context = match e.get("context") {
            Some(Node::Map(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        };
        out.push(MasterKey::AwsKms {
            arn: text(e.get("arn")),
            enc: enc(e, "kms")?,
            context,
        });
    }
    for e in list(group, "hc_vault")? {
        out.push(MasterKey::Vault {
            address: text(e.get("vault_address")),
            engine_path: text(e.get("engine_path")),
            key_name: text(e.get("key_name")),
            enc: enc(e, "hc_vault")?,
        });
    }
    for e in list(group, "azure_kv")? {
        out.push(MasterKey::AzureKv {
            vault_url: text(e.get("vault_url")),
            name: text(e.get("name")),
            version: text(e.get("version")),
            enc: enc(e, "azure_kv")?,
        });
    }
    for e in list(group, "gcp_kms")? {
        out.push(MasterKey::GcpKms {
            resource_id: text(e.get("resource_id")),
            enc: enc(e, "gcp_kms")?,
        });
    }
    for e in list(group, "pgp")? {
        out.push(MasterKey::Pgp {
            fingerprint: text(e.get("fp")),
        });
    }
    Ok(out)
}

fn regex(pattern: &str, field: &str) -> Result<Regex, SopsError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| SopsError::format(format!("sops.{field} is not a valid regular expression")))
}

impl Metadata {
    /// Reads the `sops` node of a document.
    pub fn parse(sops: &Node) -> Result<Self, SopsError> {
        if !matches!(sops, Node::Map(_)) {
            return Err(SopsError::format("the sops metadata is not a map"));
        }
        let groups_node = list(sops, "key_groups")?;
        let groups = if groups_node.is_empty() {
            vec![entries(sops, "sops")?]
        } else {
            groups_node
                .iter()
                .enumerate()
                .map(|(i, g)| entries(g, &format!("sops.key_groups[{i}]")))
                .collect::<Result<Vec<_>, _>>()?
        };
        if groups.len() > MAX_GROUPS {
            return Err(SopsError::format(format!("more than {MAX_GROUPS} key groups")));
        }
        let total: usize = groups.iter().map(Vec::len).sum();
        if total > MAX_KEYS {
            return Err(SopsError::format(format!("more than {MAX_KEYS} master keys")));
        }
        if total == 0 {
            return Err(SopsError::format("the document has no master keys"));
        }
        let threshold = match sops.get("shamir_threshold").and_then(Node::scalar_text) {
            None => groups.len(),
            Some(t) => t
                .trim()
                .parse::<usize>()
                .map_err(|_| SopsError::format("sops.shamir_threshold is not a number"))?,
        };
        // SOPS treats 0 as "every group".
        let threshold = if threshold == 0 { groups.len() } else { threshold };
        if threshold > groups.len() {
            return Err(SopsError::format(format!(
                "sops.shamir_threshold ({threshold}) is larger than the number of key groups ({})",
                groups.len()
            )));
        }
        let opt = |k: &str| sops.get(k).and_then(Node::scalar_text).filter(|s| !s.is_empty());
        let mut rules = Vec::new();
        if let Some(s) = opt("unencrypted_suffix") {
            rules.push(Rule::UnencryptedSuffix(s));
        }
        if let Some(s) = opt("encrypted_suffix") {
            rules.push(Rule::EncryptedSuffix(s));
        }
        if let Some(s) = opt("unencrypted_regex") {
            rules.push(Rule::UnencryptedRegex(regex(&s, "unencrypted_regex")?));
        }
        if let Some(s) = opt("encrypted_regex") {
            rules.push(Rule::EncryptedRegex(regex(&s, "encrypted_regex")?));
        }
        if rules.len() > 1 {
            return Err(SopsError::format(
                "more than one of unencrypted_suffix, encrypted_suffix, unencrypted_regex and encrypted_regex is set",
            ));
        }
        let last_modified = opt("lastmodified").ok_or_else(|| SopsError::format("sops.lastmodified is missing"))?;
        let mac = opt("mac").ok_or_else(|| SopsError::Tampered("the document has no MAC (sops.mac)".into()))?;
        let mac_only_encrypted = opt("mac_only_encrypted").is_some_and(|v| v == "true");
        Ok(Self {
            groups,
            threshold,
            last_modified,
            mac,
            rule: rules.pop().unwrap_or(Rule::All),
            mac_only_encrypted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(yaml: &str) -> Result<Metadata, SopsError> {
        Metadata::parse(&serde_yaml::from_str::<Node>(yaml).unwrap())
    }

    #[test]
    fn groups_thresholds_and_rules() {
        let m = meta(
            "age: [{recipient: age1a, enc: A}]\nkms: [{arn: 'arn:aws:kms:eu-west-1:1:key/k', enc: K, context: {app: x}}]\n\
             lastmodified: '2024-01-01T00:00:00Z'\nmac: ENC[x]\nunencrypted_suffix: _unencrypted\n",
        )
        .unwrap();
        assert_eq!(m.groups.len(), 1);
        assert_eq!(m.groups[0].len(), 2);
        assert_eq!(m.threshold, 1);
        assert!(m.rule.encrypts(&["a".into()]));
        assert!(!m.rule.encrypts(&["a_unencrypted".into(), "b".into()]));
        let MasterKey::AwsKms { context, .. } = &m.groups[0][1] else {
            panic!()
        };
        assert_eq!(context, &[("app".to_string(), "x".to_string())]);

        let m = meta(
            "key_groups: [{age: [{recipient: a, enc: A}]}, {age: [{recipient: b, enc: B}]}, {hc_vault: [{vault_address: v, engine_path: sops, key_name: k, enc: 'vault:v1:x'}]}]\n\
             shamir_threshold: 2\nlastmodified: t\nmac: m\nencrypted_regex: ^(data|stringData)$\n",
        )
        .unwrap();
        assert_eq!((m.groups.len(), m.threshold), (3, 2));
        assert!(m.rule.encrypts(&["data".into(), "x".into()]));
        assert!(!m.rule.encrypts(&["metadata".into()]));
    }

    #[test]
    fn refuses_what_cannot_be_right() {
        assert!(matches!(
            meta("age: [{recipient: a, enc: A}]\nlastmodified: t\n"),
            Err(SopsError::Tampered(_))
        ));
        assert!(meta("lastmodified: t\nmac: m\n").is_err());
        assert!(meta("key_groups: [{age: [{enc: A}]}]\nshamir_threshold: 3\nlastmodified: t\nmac: m\n").is_err());
        let many = format!(
            "age: [{}]\nlastmodified: t\nmac: m\n",
            vec!["{recipient: a, enc: A}"; MAX_KEYS + 1].join(",")
        );
        assert!(meta(&many).is_err());
    }
}
