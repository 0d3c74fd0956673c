//! Where a provider client may connect. Endpoints named by a namespaced SecretStore (a tenant's object) are checked
//! against a deny list — loopback, link-local and cloud metadata addresses, unspecified addresses, the apiserver's
//! own addresses, plus `--egress-deny` — unless `--egress-allow` exempts them. The check runs on the *resolved*
//! address, each time a connection is opened ([`EgressResolver`] for names, [`Egress::check_host`] for IP
//! literals), so a name that resolves to an allowed address at validation and to a metadata address later (DNS
//! rebinding) is still refused. ClusterSecretStores, written by cluster admins, are not restricted.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

pub use ipnet::IpNet;

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    Loopback,
    LinkLocal,
    Metadata,
    Unspecified,
    Apiserver,
    Configured,
}

impl DenyReason {
    fn as_str(self) -> &'static str {
        match self {
            DenyReason::Loopback => "loopback",
            DenyReason::LinkLocal => "link-local",
            DenyReason::Metadata => "cloud metadata",
            DenyReason::Unspecified => "unspecified",
            DenyReason::Apiserver => "the Kubernetes apiserver",
            DenyReason::Configured => "--egress-deny",
        }
    }
}

/// A refused connection: the host as named and the address it resolved to. Carries no URL path or query.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "connection to {host} ({addr}) refused by syncret's egress policy: {} addresses are not reachable from a \
     namespaced SecretStore (use a ClusterSecretStore, or exempt the address with --egress-allow)",
    reason.as_str()
)]
pub struct EgressDenied {
    pub host: String,
    pub addr: IpAddr,
    pub reason: DenyReason,
}

/// Resolution failed or every address was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Denied(#[from] EgressDenied),
    #[error("resolving {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
}

/// The operator-wide policy (from the flags).
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    /// `--egress-allow`: exempt from every deny rule.
    pub allow: Vec<IpNet>,
    /// `--egress-deny`: refused besides the built-in rules.
    pub deny: Vec<IpNet>,
    /// The apiserver's own addresses (its service IP and the address the operator reaches it at).
    pub apiserver: Vec<IpAddr>,
}

/// Well-known metadata endpoints outside the link-local range.
const METADATA: [IpAddr; 3] = [
    // Alibaba Cloud
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Oracle Cloud (the v2 IMDS also listens on 169.254.169.254)
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    // AWS IMDS over IPv6
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

impl EgressPolicy {
    /// Why `ip` is refused, if it is. IPv4-mapped IPv6 addresses are judged as the IPv4 address.
    pub fn deny_reason(&self, ip: IpAddr, may_reach_apiserver: bool) -> Option<DenyReason> {
        let ip = ip.to_canonical();
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        let reason = if METADATA.contains(&ip) {
            Some(DenyReason::Metadata)
        } else {
            match ip {
                IpAddr::V4(v4) if v4.is_loopback() => Some(DenyReason::Loopback),
                IpAddr::V4(v4) if v4.is_link_local() => Some(DenyReason::LinkLocal),
                IpAddr::V4(v4) if v4.is_unspecified() || v4.octets()[0] == 0 => Some(DenyReason::Unspecified),
                IpAddr::V6(v6) if v6.is_loopback() => Some(DenyReason::Loopback),
                IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(DenyReason::LinkLocal),
                IpAddr::V6(v6) if v6.is_unspecified() => Some(DenyReason::Unspecified),
                _ => None,
            }
        };
        reason
            .or_else(|| {
                (!may_reach_apiserver && self.apiserver.iter().any(|a| a.to_canonical() == ip))
                    .then_some(DenyReason::Apiserver)
            })
            .or_else(|| {
                self.deny
                    .iter()
                    .any(|n| n.contains(&ip))
                    .then_some(DenyReason::Configured)
            })
    }
}

/// Which rules apply to one client.
#[derive(Clone, Debug)]
pub struct Egress {
    /// `None`: unrestricted (a ClusterSecretStore).
    policy: Option<Arc<EgressPolicy>>,
    /// The kubernetes provider talks to apiservers: the apiserver's own addresses are its legitimate target.
    may_reach_apiserver: bool,
}

impl Egress {
    /// No restriction (ClusterSecretStores, and tests of providers outside a tenant boundary).
    pub fn unrestricted() -> Self {
        Self {
            policy: None,
            may_reach_apiserver: true,
        }
    }

    /// The policy's rules.
    pub fn restricted(policy: Arc<EgressPolicy>) -> Self {
        Self {
            policy: Some(policy),
            may_reach_apiserver: false,
        }
    }

    /// The same rules, but the apiserver's own addresses allowed (the kubernetes provider).
    pub fn reaching_apiserver(mut self) -> Self {
        self.may_reach_apiserver = true;
        self
    }

    pub fn is_restricted(&self) -> bool {
        self.policy.is_some()
    }

    /// Checks one address `host` resolved to (or is).
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), EgressDenied> {
        let Some(policy) = &self.policy else { return Ok(()) };
        match policy.deny_reason(addr, self.may_reach_apiserver) {
            Some(reason) => Err(EgressDenied {
                host: host.to_string(),
                addr,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL host when it is an IP literal (names are checked when they are resolved).
    pub fn check_host(&self, host: &str) -> Result<(), EgressDenied> {
        match literal_ip(host) {
            Some(ip) => self.check(host, ip),
            None => Ok(()),
        }
    }

    /// Resolves `host` (a name or an IP literal) and keeps the addresses the policy allows; refuses when none is.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        if let Some(ip) = literal_ip(host) {
            self.check(host, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_string(),
                source,
            })?
            .collect();
        let mut first_denied = None;
        let mut allowed = Vec::with_capacity(found.len());
        for addr in found {
            match self.check(host, addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(e) => {
                    first_denied.get_or_insert(e);
                }
            }
        }
        match (allowed.is_empty(), first_denied) {
            (false, _) => Ok(allowed),
            (true, Some(denied)) => Err(denied.into()),
            (true, None) => Err(ResolveError::NoAddress { host: host.to_string() }),
        }
    }

    /// A DNS resolver applying this policy, for reqwest, hyper and the AWS SDK.
    pub fn resolver(&self) -> EgressResolver {
        EgressResolver(self.clone())
    }
}

/// The refusal somewhere in an error's source chain (clients wrap it in their own errors), if there is one.
pub fn find_denied(e: &(dyn std::error::Error + 'static)) -> Option<EgressDenied> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(d) = err.downcast_ref::<EgressDenied>() {
            return Some(d.clone());
        }
        if let Some(ResolveError::Denied(d)) = err.downcast_ref::<ResolveError>() {
            return Some(d.clone());
        }
        cur = err.source();
    }
    None
}

/// `host` as an IP address, if it is a literal (IPv6 in brackets or not).
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Parses one `--egress-allow` / `--egress-deny` entry: a CIDR or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR"))
}

/// Parses several entries, skipping blanks.
pub fn parse_nets(items: &[String]) -> Result<Vec<IpNet>, String> {
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_net(s))
        .collect()
}

/// The policy as a DNS resolver (see [`Egress::resolver`]).
#[derive(Clone, Debug)]
pub struct EgressResolver(Egress);

impl EgressResolver {
    async fn lookup(self, host: String) -> Result<Vec<SocketAddr>, ResolveError> {
        self.0.resolve(&host, 0).await
    }
}

#[cfg(any(feature = "webhook", feature = "vault", feature = "gcp", feature = "rest"))]
impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let me = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = me.lookup(host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(any(feature = "azure", feature = "kubernetes"))]
impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for EgressResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let me = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move { me.lookup(host).await.map(Vec::into_iter) })
    }
}

#[cfg(feature = "aws")]
impl aws_smithy_runtime_api::client::dns::ResolveDns for EgressResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        let me = self.clone();
        let host = name.to_string();
        aws_smithy_runtime_api::client::dns::DnsFuture::new(async move {
            me.lookup(host)
                .await
                .map(|addrs| addrs.into_iter().map(|a| a.ip()).collect())
                .map_err(aws_smithy_runtime_api::client::dns::ResolveDnsError::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Arc<EgressPolicy> {
        Arc::new(EgressPolicy {
            allow: parse_nets(&["10.9.0.0/16".into()]).unwrap(),
            deny: parse_nets(&["10.0.0.0/8".into()]).unwrap(),
            apiserver: vec!["10.96.0.1".parse().unwrap()],
        })
    }

    #[test]
    fn the_built_in_rules_and_the_flags() {
        let e = Egress::restricted(policy());
        let denied = |ip: &str| e.check("h", ip.parse().unwrap()).err().map(|d| d.reason);
        assert_eq!(denied("127.0.0.1"), Some(DenyReason::Loopback));
        assert_eq!(denied("127.5.6.7"), Some(DenyReason::Loopback));
        assert_eq!(denied("::1"), Some(DenyReason::Loopback));
        assert_eq!(denied("::ffff:127.0.0.1"), Some(DenyReason::Loopback), "IPv4-mapped");
        assert_eq!(denied("169.254.169.254"), Some(DenyReason::LinkLocal));
        assert_eq!(denied("fe80::1"), Some(DenyReason::LinkLocal));
        assert_eq!(denied("fd00:ec2::254"), Some(DenyReason::Metadata));
        assert_eq!(denied("100.100.100.200"), Some(DenyReason::Metadata));
        assert_eq!(denied("0.0.0.0"), Some(DenyReason::Unspecified));
        assert_eq!(denied("::"), Some(DenyReason::Unspecified));
        assert_eq!(denied("10.96.0.1"), Some(DenyReason::Apiserver), "in --egress-deny too");
        assert_eq!(denied("10.1.2.3"), Some(DenyReason::Configured));
        assert_eq!(denied("10.9.1.1"), None, "--egress-allow wins");
        assert_eq!(denied("203.0.113.7"), None);
        assert_eq!(denied("2001:db8::1"), None);

        let only_apiserver = Egress::restricted(Arc::new(EgressPolicy {
            apiserver: vec!["10.96.0.1".parse().unwrap()],
            ..Default::default()
        }));
        assert_eq!(
            only_apiserver
                .check("h", "10.96.0.1".parse().unwrap())
                .unwrap_err()
                .reason,
            DenyReason::Apiserver
        );
        assert!(
            only_apiserver
                .clone()
                .reaching_apiserver()
                .check("h", "10.96.0.1".parse().unwrap())
                .is_ok(),
            "the kubernetes provider may reach the apiserver"
        );
        assert!(Egress::unrestricted().check("h", "127.0.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn literals_and_flag_parsing() {
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_ip("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal_ip("example.com"), None);
        let e = Egress::restricted(Arc::new(EgressPolicy::default()));
        assert!(e.check_host("[::1]").is_err());
        assert!(e.check_host("localhost").is_ok(), "names are checked once resolved");
        assert_eq!(parse_nets(&["1.2.3.4".into(), " ".into()]).unwrap().len(), 1);
        assert!(parse_nets(&["nope".into()]).unwrap_err().contains("nope"));
        let msg = e
            .check("metadata.internal", "169.254.169.254".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(
                "connection to metadata.internal (169.254.169.254) refused by syncret's egress policy: link-local"
            ),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let e = Egress::restricted(Arc::new(EgressPolicy::default()));
        let err = e.resolve("localhost", 80).await.unwrap_err();
        assert!(
            matches!(err, ResolveError::Denied(ref d) if d.reason == DenyReason::Loopback),
            "{err}"
        );
        let allowed = Egress::restricted(Arc::new(EgressPolicy {
            allow: parse_nets(&["127.0.0.0/8".into(), "::1".into()]).unwrap(),
            ..Default::default()
        }));
        let addrs = allowed.resolve("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
        assert_eq!(
            Egress::unrestricted().resolve("127.0.0.1", 8).await.unwrap(),
            vec!["127.0.0.1:8".parse().unwrap()]
        );
    }
}
