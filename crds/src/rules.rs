//! The one rule set behind `validate()`, the CRDs' `x-kubernetes-validations` and the ValidatingAdmissionPolicy.
//!
//! Every check `validate()` makes is a [`Rule`]: `validate()` tags each [`FieldError`](crate::FieldError) with
//! the rule that found it, and [`Rule::def`] says, for that same rule, how the apiserver enforces it at apply:
//!
//! - [`Enforced::Policy`]: a CEL test, generated into the ValidatingAdmissionPolicy of every kind that embeds
//!   the rule's owner (`syncret crds --policy`, see [`crate::admission`]);
//! - [`Enforced::Crd`]: a CEL rule of ESO's own CRDs, injected into the generated CRD schema;
//! - [`Enforced::Schema`]: the OpenAPI schema already refuses it (pattern, enum, min/max properties);
//! - [`Enforced::Reconcile`]: only at reconcile (CEL cannot express it).
//!
//! The table is written with the `rules!` macro, so a rule cannot exist without its enforcement, its field path
//! and an invalid sample; `crds/tests/rules.rs` checks that `validate()` reports each rule on its sample at the
//! path the table gives, and `tests/tests/integration/admission.rs` that the apiserver refuses the same sample.
//!
//! CEL tests are written over two placeholders: `@` is the node at the rule's scope and `%` the owner's root
//! (e.g. the ExternalSecret spec). Three macros expand to CEL that Kubernetes 1.30 understands:
//! `DUR(x)` (a non-negative Go duration: a regular expression for `time.ParseDuration`'s grammar, then CEL's
//! `duration()`, which is `time.ParseDuration` itself), `REGEX(x)` (compiles under Go's RE2, the apiserver's
//! and ESO's regexp; a pattern that does not compile makes the expression fail, which the policy's
//! `failurePolicy: Fail` turns into a refusal) and `CRON(x)` (robfig/cron's 5-field and `@` forms, field
//! ranges and names).

/// Which spec a rule is written against. Each kind embeds one or more owners at a root path (see
/// [`crate::admission::roots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// `ExternalSecretSpec` (an ExternalSecret's `spec`, a ClusterExternalSecret's `spec.externalSecretSpec`).
    ExternalSecret,
    /// `ExternalSecretTemplate`, wherever it renders (ExternalSecret `spec.target.template`, PushSecret
    /// `spec.template`).
    Template,
    /// A template that renders a Secret (an ExternalSecret without a non-Secret `target.manifest`, or a
    /// PushSecret).
    SecretTemplate,
    /// `SecretStoreSpec` (SecretStore and ClusterSecretStore).
    Store,
    /// `SecretStoreSpec` of a namespaced SecretStore only (`request.namespace` is its namespace).
    NamespacedStore,
    /// `PushSecretSpec` (a PushSecret's `spec`, a ClusterPushSecret's `spec.pushSecretSpec`).
    PushSecret,
    /// `ClusterExternalSecretSpec` only.
    ClusterExternalSecret,
    /// `ClusterPushSecretSpec` only.
    ClusterPushSecret,
}

/// How the apiserver enforces a rule at apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    /// A validation of the ValidatingAdmissionPolicy.
    Policy {
        /// CEL over `@` and `%`, true when valid.
        test: &'static str,
        /// The message after `<path>: `.
        message: &'static str,
        /// CEL over `@` and `%` giving the message after the scope's path, starting with `.field: ` or
        /// `[key]: ` (when the message names a value or an index inside the scope).
        message_expr: Option<&'static str>,
        /// What the CEL does not cover that `validate()` does, if anything.
        residual: Option<&'static str>,
    },
    /// An `x-kubernetes-validations` rule of the CRD at the rule's scope (ESO has these in its CRDs).
    Crd { rule: &'static str, message: &'static str },
    /// The OpenAPI schema refuses it already; the text says how.
    Schema(&'static str),
    /// Only `validate()` checks it; the text says why CEL cannot.
    Reconcile(&'static str),
}

/// One rule: who owns it, where it looks, what it names, how the apiserver enforces it, and an invalid sample.
#[derive(Debug, Clone, Copy)]
pub struct RuleDef {
    pub owner: Owner,
    /// Where the test runs, relative to the owner's root: dotted fields, `[]` for every item of a list
    /// (`dataFrom[].rewrite[]`); empty for the root itself. Several scopes apply the same test at each.
    pub scopes: &'static [&'static str],
    /// The field the error names, relative to the scope (`secretKey`, `[*]` for a map key or list index the
    /// message computes); empty for the scope itself.
    pub field: &'static str,
    pub enforced: Enforced,
    /// A manifest (YAML) that breaks this rule and no other rule the apiserver enforces.
    pub sample: &'static str,
}

impl RuleDef {
    /// Whether the apiserver refuses every object that breaks this rule (not only partly, not never).
    pub fn refused_at_apply(&self) -> bool {
        match self.enforced {
            Enforced::Policy { residual, .. } => residual.is_none(),
            Enforced::Crd { .. } | Enforced::Schema(_) => true,
            Enforced::Reconcile(_) => false,
        }
    }
}

macro_rules! rules {
    ($($(#[$doc:meta])* $name:ident => $def:expr,)*) => {
        /// A rule of `validate()`; see the module docs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule {
            $($(#[$doc])* $name,)*
        }

        impl Rule {
            /// Every rule, in table order.
            pub const ALL: &'static [Rule] = &[$(Rule::$name,)*];

            /// The rule's definition.
            pub fn def(self) -> RuleDef {
                match self {
                    $(Rule::$name => $def,)*
                }
            }

            /// The rule's name, e.g. `EsDuplicateSecretKey`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Rule::$name => stringify!($name),)*
                }
            }
        }
    };
}

const fn policy(test: &'static str, message: &'static str) -> Enforced {
    Enforced::Policy {
        test,
        message,
        message_expr: None,
        residual: None,
    }
}

const fn policy_with(test: &'static str, message: &'static str, message_expr: &'static str) -> Enforced {
    Enforced::Policy {
        test,
        message,
        message_expr: Some(message_expr),
        residual: None,
    }
}

const fn def(
    owner: Owner,
    scopes: &'static [&'static str],
    field: &'static str,
    enforced: Enforced,
    sample: &'static str,
) -> RuleDef {
    RuleDef {
        owner,
        scopes,
        field,
        enforced,
        sample,
    }
}

/// Lists longer than this skip the duplicate checks in CEL (they are quadratic and would meet the apiserver's
/// cost limit, refusing a valid object); `validate()` still checks them at reconcile.
pub const CEL_DUPLICATE_CHECK_MAX_ITEMS: usize = 400;

/// Why regular-expression checks are partial in CEL.
const REGEX_RESIDUAL: &str = "the apiserver compiles with Go's RE2 (what ESO uses); the few patterns Go accepts and Rust's regex refuses (duplicate group names such as `(?P<n>a)(?P<n>b)`) pass at apply and are refused at reconcile";

const fn regex_rule(test: &'static str) -> Enforced {
    Enforced::Policy {
        test,
        message: "must be a valid regular expression",
        message_expr: None,
        residual: Some(REGEX_RESIDUAL),
    }
}

/// Why duplicate checks are partial in CEL.
const DUPLICATE_RESIDUAL: &str = "lists longer than 400 items are checked only at reconcile (the CEL check is quadratic and would meet the apiserver's cost limit)";

macro_rules! sample {
    (ES, $spec:literal) => {
        concat!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: sample}\nspec:\n",
            $spec
        )
    };
    (SS, $spec:literal) => {
        concat!(
            "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: sample}\nspec:\n",
            $spec
        )
    };
    (PS, $spec:literal) => {
        concat!(
            "apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {name: sample}\nspec:\n",
            $spec
        )
    };
    (CES, $spec:literal) => {
        concat!(
            "apiVersion: external-secrets.io/v1\nkind: ClusterExternalSecret\nmetadata: {name: sample}\nspec:\n",
            $spec
        )
    };
    (CPS, $spec:literal) => {
        concat!(
            "apiVersion: external-secrets.io/v1alpha1\nkind: ClusterPushSecret\nmetadata: {name: sample}\nspec:\n",
            $spec
        )
    };
}

use Owner::*;

rules! {
    // ----- ExternalSecret -------------------------------------------------------------------------------
    /// `deletionPolicy: Delete` needs a creationPolicy that owns the Secret.
    EsDeleteNeedsOwner => def(ExternalSecret, &["target"], "deletionPolicy", policy_with(
        "!(has(@.deletionPolicy) && @.deletionPolicy == 'Delete' && has(@.creationPolicy) && @.creationPolicy in ['Merge', 'None', 'CreateOrMerge'])",
        "deletionPolicy Delete needs a creationPolicy that owns the Secret (Owner)",
        "'.deletionPolicy: deletionPolicy Delete needs a creationPolicy that owns the Secret (Owner), not ' + @.creationPolicy",
    ), sample!(ES, "  target: {creationPolicy: Merge, deletionPolicy: Delete}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// `deletionPolicy: Merge` cannot be used with `creationPolicy: None`.
    EsMergeDeletionWithNone => def(ExternalSecret, &["target"], "deletionPolicy", policy(
        "!(has(@.deletionPolicy) && @.deletionPolicy == 'Merge' && has(@.creationPolicy) && @.creationPolicy == 'None')",
        "deletionPolicy Merge cannot be used with creationPolicy None",
    ), sample!(ES, "  target: {creationPolicy: None, deletionPolicy: Merge}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// `refreshInterval` is a non-negative Go duration.
    EsRefreshInterval => def(ExternalSecret, &[""], "refreshInterval", policy(
        "!has(@.refreshInterval) || DUR(@.refreshInterval)",
        "must be a non-negative Go duration such as 1h0m0s, 30s or 0",
    ), sample!(ES, "  refreshInterval: 1d\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// `syncWindows.windows` lists at least one window.
    EsSyncWindowsEmpty => def(ExternalSecret, &["syncWindows"], "windows",
        Enforced::Schema("minItems: 1"),
        sample!(ES, "  syncWindows: {kind: allow, windows: []}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// Each sync window's `schedule` is a cron expression robfig/cron accepts.
    EsSyncWindowSchedule => def(ExternalSecret, &["syncWindows.windows[]"], "schedule", Enforced::Policy {
        test: "CRON(@.schedule)",
        message: "must be a 5-field cron expression (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly, @every <duration>",
        message_expr: None,
        residual: Some("a range whose start is after its end (`5-1`) and a step over 2^32 are refused only at reconcile"),
    }, sample!(ES, "  syncWindows: {kind: allow, windows: [{schedule: '61 * * * *', duration: 1h}]}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// Each sync window's `duration` is a positive Go duration.
    EsSyncWindowDuration => def(ExternalSecret, &["syncWindows.windows[]"], "duration", policy(
        "DUR(@.duration) && duration(@.duration) > duration('0s')",
        "must be a positive Go duration such as 8h",
    ), sample!(ES, "  syncWindows: {kind: allow, windows: [{schedule: '@daily', duration: 0s}]}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// `data` or `dataFrom` is not empty.
    EsNoData => def(ExternalSecret, &[""], "", policy(
        "(has(@.data) && size(@.data) > 0) || (has(@.dataFrom) && size(@.dataFrom) > 0)",
        "either data or dataFrom must be specified",
    ), sample!(ES, "  secretStoreRef: {name: s}\n")),
    /// `data[].secretKey` is a valid Secret key.
    EsSecretKey => def(ExternalSecret, &["data[]"], "secretKey",
        Enforced::Schema("pattern ^[-._a-zA-Z0-9]+@, maxLength 253"),
        sample!(ES, "  data: [{secretKey: 'a/b', remoteRef: {key: a}}]\n")),
    /// With `deletionPolicy: Retain` (the default) no two `data` items have the same `secretKey`.
    EsDuplicateSecretKey => def(ExternalSecret, &["data"], "[*].secretKey", Enforced::Policy {
        test: "(has(%.target) && has(%.target.deletionPolicy) && %.target.deletionPolicy != 'Retain') || size(@) > 400 || @.all(a, @.exists_one(b, b.secretKey == a.secretKey))",
        message: "duplicate secretKey",
        message_expr: Some("'[' + string(@.map(d, d.secretKey).lastIndexOf(@.map(d, d.secretKey).filter(k, @.filter(e, e.secretKey == k).size() > 1)[0])) + '].secretKey: duplicate secretKey \"' + @.map(d, d.secretKey).filter(k, @.filter(e, e.secretKey == k).size() > 1)[0] + '\"'"),
        residual: Some(DUPLICATE_RESIDUAL),
    }, sample!(ES, "  data: [{secretKey: a, remoteRef: {key: a}}, {secretKey: a, remoteRef: {key: b}}]\n")),
    /// `data[].remoteRef.key` is not empty.
    EsRemoteKeyEmpty => def(ExternalSecret, &["data[]"], "remoteRef.key", policy(
        "@.remoteRef.key != ''",
        "must not be empty",
    ), sample!(ES, "  data: [{secretKey: a, remoteRef: {key: ''}}]\n")),
    /// `data[].sourceRef` sets exactly one of `storeRef` or `generatorRef`.
    EsDataSourceRef => def(ExternalSecret, &["data[]"], "sourceRef",
        Enforced::Schema("minProperties: 1, maxProperties: 1"),
        sample!(ES, "  data: [{secretKey: a, remoteRef: {key: a}, sourceRef: {}}]\n")),
    /// A `dataFrom` entry sets one of `extract`, `find` or `sourceRef`.
    EsDataFromNothing => def(ExternalSecret, &["dataFrom[]"], "", policy(
        "has(@.extract) || has(@.find) || has(@.sourceRef)",
        "one of extract, find or sourceRef must be set",
    ), sample!(ES, "  dataFrom: [{rewrite: [{transform: {template: x}}]}]\n")),
    /// A `dataFrom` entry sets at most one of `extract`, `find` or `sourceRef.generatorRef`.
    EsDataFromExclusive => def(ExternalSecret, &["dataFrom[]"], "", policy(
        "[has(@.extract), has(@.find), has(@.sourceRef) && has(@.sourceRef.generatorRef)].filter(x, x).size() <= 1",
        "only one of extract, find or sourceRef.generatorRef may be set",
    ), sample!(ES, "  dataFrom: [{extract: {key: a}, find: {path: b}}]\n")),
    /// `dataFrom[].sourceRef` sets exactly one of `storeRef` or `generatorRef`.
    EsDataFromSourceRef => def(ExternalSecret, &["dataFrom[]"], "sourceRef",
        Enforced::Schema("minProperties: 1, maxProperties: 1"),
        sample!(ES, "  dataFrom: [{extract: {key: a}, sourceRef: {}}]\n")),
    /// `dataFrom[].extract.key` is not empty.
    EsExtractKeyEmpty => def(ExternalSecret, &["dataFrom[].extract"], "key", policy(
        "@.key != ''",
        "must not be empty",
    ), sample!(ES, "  dataFrom: [{extract: {key: ''}}]\n")),
    /// `dataFrom[].find.name.regexp` compiles.
    EsFindRegexp => def(ExternalSecret, &["dataFrom[].find.name"], "regexp", regex_rule(
        "!has(@.regexp) || REGEX(@.regexp)",
    ), sample!(ES, "  dataFrom: [{find: {name: {regexp: '(unclosed'}}}]\n")),
    /// A rewrite step sets exactly one of `merge`, `regexp` or `transform`.
    EsRewriteExactlyOne => def(ExternalSecret, &["dataFrom[].rewrite[]"], "",
        Enforced::Schema("minProperties: 1, maxProperties: 1"),
        sample!(ES, "  dataFrom: [{extract: {key: a}, rewrite: [{}]}]\n")),
    /// `rewrite[].regexp.source` compiles.
    EsRewriteRegexp => def(ExternalSecret, &["dataFrom[].rewrite[].regexp"], "source", regex_rule(
        "REGEX(@.source)",
    ), sample!(ES, "  dataFrom: [{extract: {key: a}, rewrite: [{regexp: {source: '[', target: x}}]}]\n")),
    /// `rewrite[].merge` with `strategy: JSON` names its `into` key.
    EsMergeJsonInto => def(ExternalSecret, &["dataFrom[].rewrite[].merge"], "into", policy(
        "!(has(@.strategy) && @.strategy == 'JSON') || (has(@.into) && @.into != '')",
        "is required with strategy JSON",
    ), sample!(ES, "  dataFrom: [{extract: {key: a}, rewrite: [{merge: {strategy: JSON}}]}]\n")),

    // ----- Templates (ExternalSecret and PushSecret) -----------------------------------------------------
    /// A template cannot make a bootstrap token Secret.
    TplBootstrapType => def(Template, &[""], "type", policy(
        "!has(@.type) || @.type != 'bootstrap.kubernetes.io/token'",
        "type \"bootstrap.kubernetes.io/token\" is not allowed",
    ), sample!(ES, "  target: {template: {type: bootstrap.kubernetes.io/token}}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// A service-account-token template cannot name the service account.
    TplSaAnnotation => def(Template, &[""], "metadata.annotations[kubernetes.io/service-account.name]", policy(
        "!(has(@.type) && @.type == 'kubernetes.io/service-account-token' && has(@.metadata) && has(@.metadata.annotations) && 'kubernetes.io/service-account.name' in @.metadata.annotations)",
        "annotation \"kubernetes.io/service-account.name\" is not allowed with type \"kubernetes.io/service-account-token\"",
    ), sample!(ES, "  target: {template: {type: kubernetes.io/service-account-token, metadata: {annotations: {kubernetes.io/service-account.name: admin}}}}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// A service-account-token template cannot render annotations from `templateFrom`.
    TplSaTemplateFromAnnotations => def(Template, &["templateFrom[]"], "target", policy(
        "!(has(%.type) && %.type == 'kubernetes.io/service-account-token' && has(@.target) && @.target.lowerAscii() == 'annotations')",
        "target Annotations is not allowed with type \"kubernetes.io/service-account-token\"",
    ), sample!(ES, "  target: {template: {type: kubernetes.io/service-account-token, templateFrom: [{target: Annotations, literal: x}]}}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// A template rendering a Secret has valid Secret keys in `data`.
    TplDataKey => def(SecretTemplate, &["data"], "[*]", policy_with(
        "@.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",
        "is not a valid Secret key (must match ^[-._a-zA-Z0-9]+$)",
        "'[' + @.filter(k, !(size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$')))[0] + ']: \"' + @.filter(k, !(size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$')))[0] + '\" is not a valid Secret key (must match ^[-._a-zA-Z0-9]+$)'",
    ), sample!(ES, "  target: {template: {data: {'config file': x}}}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// A template rendering a Secret sends `templateFrom` to Data, Annotations or Labels only.
    TplFromTarget => def(SecretTemplate, &["templateFrom[]"], "target", policy_with(
        "!has(@.target) || @.target == '' || @.target.lowerAscii() in ['data', 'annotations', 'labels']",
        "is not allowed for a Secret, must be Data, Annotations or Labels",
        "'.target: target \"' + @.target + '\" is not allowed for a Secret, must be Data, Annotations or Labels'",
    ), sample!(ES, "  target: {template: {templateFrom: [{target: type, literal: x}]}}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),
    /// A `templateFrom` ConfigMap or Secret lists each key once.
    TplDuplicateItemKey => def(Template, &["templateFrom[].configMap.items", "templateFrom[].secret.items"], "[*].key", Enforced::Policy {
        test: "size(@) > 400 || @.all(a, @.exists_one(b, b.key == a.key))",
        message: "duplicate key",
        message_expr: Some("'[' + string(@.map(d, d.key).lastIndexOf(@.map(d, d.key).filter(k, @.filter(e, e.key == k).size() > 1)[0])) + '].key: duplicate key \"' + @.map(d, d.key).filter(k, @.filter(e, e.key == k).size() > 1)[0] + '\"'"),
        residual: Some(DUPLICATE_RESIDUAL),
    }, sample!(ES, "  target: {template: {templateFrom: [{configMap: {name: c, items: [{key: k}, {key: k}]}}]}}\n  data: [{secretKey: a, remoteRef: {key: a}}]\n")),

    // ----- SecretStore and ClusterSecretStore --------------------------------------------------------------
    /// `spec.provider` holds no key syncret does not implement.
    StoreProviderUnsupported => def(Store, &[""], "provider",
        Enforced::Schema("unknown fields are refused (strict field validation) or pruned, leaving an empty provider that minProperties: 1 refuses"),
        sample!(SS, "  provider: {akeyless: {akeylessGWApiURL: x}}\n")),
    /// `spec.provider` sets exactly one provider.
    StoreProviderCount => def(Store, &[""], "provider",
        Enforced::Schema("minProperties: 1, maxProperties: 1"),
        sample!(SS, "  provider: {}\n")),
    /// `refreshInterval` is a non-negative number of seconds or Go duration.
    StoreRefreshInterval => def(Store, &[""], "refreshInterval", policy(
        "!has(@.refreshInterval) || (type(@.refreshInterval) == int ? @.refreshInterval >= 0 : DUR(string(@.refreshInterval)))",
        "must be a non-negative number of seconds or a Go duration such as 5m",
    ), sample!(SS, "  refreshInterval: 5 minutes\n  provider: {fake: {data: []}}\n")),
    /// `retrySettings.retryInterval` is a non-negative Go duration.
    StoreRetryInterval => def(Store, &["retrySettings"], "retryInterval", policy(
        "!has(@.retryInterval) || DUR(@.retryInterval)",
        "must be a non-negative Go duration such as 10s",
    ), sample!(SS, "  retrySettings: {retryInterval: '10'}\n  provider: {fake: {data: []}}\n")),
    /// `retrySettings.maxRetries` is not negative.
    StoreMaxRetries => def(Store, &["retrySettings"], "maxRetries", policy(
        "!has(@.maxRetries) || @.maxRetries >= 0",
        "must not be negative",
    ), sample!(SS, "  retrySettings: {maxRetries: -1}\n  provider: {fake: {data: []}}\n")),
    /// `conditions[].namespaceRegexes[]` compile.
    StoreNamespaceRegex => def(Store, &["conditions[].namespaceRegexes[]"], "", regex_rule(
        "REGEX(@)",
    ), sample!(SS, "  conditions: [{namespaceRegexes: ['(']}]\n  provider: {fake: {data: []}}\n")),
    /// A SecretStore's Secret, ConfigMap and ServiceAccount references stay in its own namespace (ESO's
    /// `ValidateReferentSecretSelector`); the scopes are every reference under `provider`, read from the schema.
    StoreSelectorNamespace => def(NamespacedStore, crate::admission::selector_scopes(), "namespace", policy_with(
        "!has(@.namespace) || @.namespace == '' || @.namespace == request.namespace",
        "must be empty or the SecretStore's own namespace",
        "'.namespace: namespace \"' + @.namespace + '\" is not allowed: a SecretStore can only reference its own namespace'",
    ), sample!(SS, "  provider: {kubernetes: {auth: {token: {bearerToken: {name: t, key: k, namespace: other}}}}}\n")),
    /// AWS: `region` is set.
    AwsRegion => def(Store, &["provider.aws"], "region", policy(
        "@.region.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {aws: {service: SecretsManager, region: ' '}}\n")),
    /// AWS: at most one of `auth.secretRef` or `auth.jwt`.
    AwsAuthExclusive => def(Store, &["provider.aws.auth"], "", policy(
        "!(has(@.secretRef) && has(@.jwt))",
        "only one of secretRef or jwt may be set",
    ), sample!(SS, "  provider: {aws: {service: SecretsManager, region: eu-west-1, auth: {secretRef: {}, jwt: {}}}}\n")),
    /// AWS: `forceDeleteWithoutRecovery` and `recoveryWindowInDays` exclude each other.
    AwsForceDeleteAndWindow => def(Store, &["provider.aws.secretsManager"], "", policy(
        "!(has(@.forceDeleteWithoutRecovery) && @.forceDeleteWithoutRecovery && has(@.recoveryWindowInDays) && @.recoveryWindowInDays != 0)",
        "forceDeleteWithoutRecovery and recoveryWindowInDays cannot be used together",
    ), sample!(SS, "  provider: {aws: {service: SecretsManager, region: eu-west-1, secretsManager: {forceDeleteWithoutRecovery: true, recoveryWindowInDays: 7}}}\n")),
    /// AWS: `recoveryWindowInDays` is between 7 and 30.
    AwsRecoveryWindow => def(Store, &["provider.aws.secretsManager"], "recoveryWindowInDays", policy(
        "!has(@.recoveryWindowInDays) || @.recoveryWindowInDays == 0 || (@.recoveryWindowInDays >= 7 && @.recoveryWindowInDays <= 30)",
        "must be between 7 and 30",
    ), sample!(SS, "  provider: {aws: {service: SecretsManager, region: eu-west-1, secretsManager: {recoveryWindowInDays: 3}}}\n")),
    /// AWS: `customSessionTags` cannot use the tags the controller adds (an ESO CRD rule).
    AwsReservedSessionTag => def(Store, &["provider.aws.customSessionTags"], "", Enforced::Crd {
        rule: "!('esoNamespace' in self) && !('esoStoreName' in self) && !('esoStoreKind' in self)",
        message: "customSessionTags cannot contain automatically injected reserved keys: esoNamespace, esoStoreName, esoStoreKind",
    }, sample!(SS, "  provider: {aws: {service: SecretsManager, region: eu-west-1, customSessionTags: {esoStoreName: x}}}\n")),
    /// Azure: `vaultUrl` is set.
    AzureVaultUrl => def(Store, &["provider.azurekv"], "vaultUrl", policy(
        "@.vaultUrl.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {azurekv: {vaultUrl: ''}}\n")),
    /// Azure: `customCloudConfig` needs `useAzureSDK: true`.
    AzureCustomCloudNeedsSdk => def(Store, &["provider.azurekv"], "customCloudConfig", policy(
        "!has(@.customCloudConfig) || (has(@.useAzureSDK) && @.useAzureSDK)",
        "requires useAzureSDK: true",
    ), sample!(SS, "  provider: {azurekv: {vaultUrl: 'https://v', environmentType: AzureStackCloud, customCloudConfig: {activeDirectoryEndpoint: 'https://login'}}}\n")),
    /// Azure: `customCloudConfig.activeDirectoryEndpoint` is set.
    AzureActiveDirectoryEndpoint => def(Store, &["provider.azurekv.customCloudConfig"], "activeDirectoryEndpoint", policy(
        "@.activeDirectoryEndpoint.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {azurekv: {vaultUrl: 'https://v', useAzureSDK: true, customCloudConfig: {activeDirectoryEndpoint: ''}}}\n")),
    /// Azure: `environmentType: AzureStackCloud` needs `customCloudConfig`.
    AzureStackNeedsCustomCloud => def(Store, &["provider.azurekv"], "customCloudConfig", policy(
        "!(has(@.environmentType) && @.environmentType == 'AzureStackCloud') || has(@.customCloudConfig)",
        "is required when environmentType is AzureStackCloud",
    ), sample!(SS, "  provider: {azurekv: {vaultUrl: 'https://v', environmentType: AzureStackCloud}}\n")),
    /// Vault: `server` is set.
    VaultServer => def(Store, &["provider.vault"], "server", policy(
        "@.server.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {vault: {server: ''}}\n")),
    /// Vault: at most one auth method.
    VaultOneAuth => def(Store, &["provider.vault.auth"], "", policy_with(
        "[has(@.tokenSecretRef), has(@.appRole), has(@.kubernetes), has(@.ldap), has(@.jwt), has(@.cert), has(@.iam), has(@.userPass), has(@.gcp)].filter(x, x).size() <= 1",
        "only one auth method may be set",
        "': only one auth method may be set, found ' + ((has(@.tokenSecretRef) ? ['tokenSecretRef'] : []) + (has(@.appRole) ? ['appRole'] : []) + (has(@.kubernetes) ? ['kubernetes'] : []) + (has(@.ldap) ? ['ldap'] : []) + (has(@.jwt) ? ['jwt'] : []) + (has(@.cert) ? ['cert'] : []) + (has(@.iam) ? ['iam'] : []) + (has(@.userPass) ? ['userPass'] : []) + (has(@.gcp) ? ['gcp'] : [])).join(', ')",
    ), sample!(SS, "  provider: {vault: {server: 'https://v', auth: {tokenSecretRef: {name: t}, appRole: {roleId: r, secretRef: {name: s}}}}}\n")),
    /// Vault: `auth.appRole` sets `roleId` or `roleRef`.
    VaultAppRoleRole => def(Store, &["provider.vault.auth.appRole"], "", policy(
        "(has(@.roleId) && @.roleId != '') || has(@.roleRef)",
        "one of roleId or roleRef must be set",
    ), sample!(SS, "  provider: {vault: {server: 'https://v', auth: {appRole: {secretRef: {name: s}}}}}\n")),
    /// Vault: `auth.jwt` sets `secretRef` or `kubernetesServiceAccountToken`.
    VaultJwtSource => def(Store, &["provider.vault.auth.jwt"], "", policy(
        "has(@.secretRef) || has(@.kubernetesServiceAccountToken)",
        "one of secretRef or kubernetesServiceAccountToken must be set",
    ), sample!(SS, "  provider: {vault: {server: 'https://v', auth: {jwt: {role: r}}}}\n")),
    /// Vault: `tls.certSecretRef` and `tls.keySecretRef` come together.
    VaultTlsPair => def(Store, &["provider.vault.tls"], "", policy(
        "has(@.certSecretRef) == has(@.keySecretRef)",
        "certSecretRef and keySecretRef must be set together",
    ), sample!(SS, "  provider: {vault: {server: 'https://v', tls: {certSecretRef: {name: c}}}}\n")),
    /// Vault: `checkAndSet.required` needs KV v2.
    VaultCasWithKvV1 => def(Store, &["provider.vault"], "checkAndSet", policy(
        "!(has(@.checkAndSet) && has(@.checkAndSet.required) && @.checkAndSet.required && has(@.version) && @.version == 'v1')",
        "checkAndSet is not supported with KV version v1",
    ), sample!(SS, "  provider: {vault: {server: 'https://v', version: v1, checkAndSet: {required: true}}}\n")),
    /// Webhook: `url` is set.
    WebhookUrl => def(Store, &["provider.webhook"], "url", policy(
        "@.url.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {webhook: {url: ''}}\n")),
    /// Webhook: `timeout` is a non-negative Go duration.
    WebhookTimeout => def(Store, &["provider.webhook"], "timeout", policy(
        "!has(@.timeout) || DUR(@.timeout)",
        "must be a non-negative Go duration such as 30s",
    ), sample!(SS, "  provider: {webhook: {url: 'http://x', timeout: '5'}}\n")),
    /// Webhook: each `secrets[].name` once.
    WebhookDuplicateSecretName => def(Store, &["provider.webhook.secrets"], "[*].name", Enforced::Policy {
        test: "size(@) > 400 || @.all(a, @.exists_one(b, b.name == a.name))",
        message: "duplicate name",
        message_expr: Some("'[' + string(@.map(d, d.name).lastIndexOf(@.map(d, d.name).filter(k, @.filter(e, e.name == k).size() > 1)[0])) + '].name: duplicate name \"' + @.map(d, d.name).filter(k, @.filter(e, e.name == k).size() > 1)[0] + '\"'"),
        residual: Some(DUPLICATE_RESIDUAL),
    }, sample!(SS, "  provider: {webhook: {url: 'http://x', secrets: [{name: a, secretRef: {name: s}}, {name: a, secretRef: {name: t}}]}}\n")),
    /// Kubernetes: exactly one of `auth.cert`, `auth.token` or `auth.serviceAccount`.
    KubernetesAuthExactlyOne => def(Store, &["provider.kubernetes.auth"], "", policy(
        "[has(@.cert), has(@.token), has(@.serviceAccount)].filter(x, x).size() == 1",
        "exactly one of cert, token or serviceAccount must be set",
    ), sample!(SS, "  provider: {kubernetes: {auth: {token: {bearerToken: {name: t, key: k}}, serviceAccount: {name: sa}}}}\n")),
    /// Kubernetes: client certificate and bearer token selectors name a Secret.
    KubernetesSelectorName => def(Store, &["provider.kubernetes.auth.cert.clientCert", "provider.kubernetes.auth.cert.clientKey", "provider.kubernetes.auth.token.bearerToken"], "name", policy(
        "has(@.name) && @.name != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {kubernetes: {auth: {token: {bearerToken: {key: k}}}}}\n")),
    /// Kubernetes: client certificate and bearer token selectors name a key.
    KubernetesSelectorKey => def(Store, &["provider.kubernetes.auth.cert.clientCert", "provider.kubernetes.auth.cert.clientKey", "provider.kubernetes.auth.token.bearerToken"], "key", policy(
        "has(@.key) && @.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {kubernetes: {auth: {token: {bearerToken: {name: t}}}}}\n")),
    /// Fake: every `data[].key` is set.
    FakeKey => def(Store, &["provider.fake.data[]"], "key", policy(
        "@.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {fake: {data: [{key: '', value: v}]}}\n")),
    /// Fake: every `data[].value` is set.
    FakeValue => def(Store, &["provider.fake.data[]"], "value", policy(
        "@.value != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {fake: {data: [{key: k, value: ''}]}}\n")),
    /// Fake: `validationResult` is 0, 1 or 2.
    FakeValidationResult => def(Store, &["provider.fake"], "validationResult", policy(
        "!has(@.validationResult) || (@.validationResult >= 0 && @.validationResult <= 2)",
        "must be 0 (Ready), 1 (Unknown) or 2 (Error)",
    ), sample!(SS, "  provider: {fake: {data: [], validationResult: 7}}\n")),
    /// OpenBao: `server` is set.
    OpenBaoServer => def(Store, &["provider.openBao"], "server", policy(
        "@.server.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {openBao: {server: ''}}\n")),
    /// OpenBao: at most one of `caBundle` or `caProvider` (an ESO CRD rule).
    OpenBaoCa => def(Store, &["provider.openBao"], "", Enforced::Crd {
        rule: "[has(self.caBundle),has(self.caProvider)].filter(x,x==true).size() <= 1",
        message: "at most one of the fields in [caBundle caProvider] may be set",
    }, sample!(SS, "  provider: {openBao: {server: 'https://bao', caBundle: YQ==, caProvider: {type: Secret, name: ca}}}\n")),
    /// OpenBao: exactly one auth method (an ESO CRD rule).
    OpenBaoAuthExactlyOne => def(Store, &["provider.openBao.auth"], "", Enforced::Crd {
        rule: "[has(self.appRole),has(self.tokenSecretRef),has(self.userPass)].filter(x,x==true).size() == 1",
        message: "exactly one of the fields in [appRole tokenSecretRef userPass] must be set",
    }, sample!(SS, "  provider: {openBao: {server: 'https://bao', auth: {tokenSecretRef: {name: t}, userPass: {username: u, secretRef: {name: p}}}}}\n")),
    /// OpenBao: `auth.appRole` sets exactly one of `roleId` or `roleRef` (an ESO CRD rule).
    OpenBaoAppRole => def(Store, &["provider.openBao.auth.appRole"], "", Enforced::Crd {
        rule: "[has(self.roleId),has(self.roleRef)].filter(x,x==true).size() == 1",
        message: "exactly one of the fields in [roleId roleRef] must be set",
    }, sample!(SS, "  provider: {openBao: {server: 'https://bao', auth: {appRole: {roleId: r, roleRef: {name: x}, secretRef: {name: s}}}}}\n")),

    /// 1Password: the Connect token selector names a Secret.
    OnePasswordTokenName => def(Store, &["provider.onepassword.auth.secretRef.connectTokenSecretRef"], "name", policy(
        "has(@.name) && @.name != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {onepassword: {connectHost: 'http://c', vaults: {a: 1}, auth: {secretRef: {connectTokenSecretRef: {key: k}}}}}\n")),
    /// 1Password: the Connect token selector names a key.
    OnePasswordTokenKey => def(Store, &["provider.onepassword.auth.secretRef.connectTokenSecretRef"], "key", policy(
        "has(@.key) && @.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {onepassword: {connectHost: 'http://c', vaults: {a: 1}, auth: {secretRef: {connectTokenSecretRef: {name: t}}}}}\n")),
    /// 1Password: `connectHost` is an http(s) URL.
    OnePasswordConnectHost => def(Store, &["provider.onepassword"], "connectHost", policy(
        "@.connectHost.trim().startsWith('http://') || @.connectHost.trim().startsWith('https://')",
        "must be an http:// or https:// URL",
    ), sample!(SS, "  provider: {onepassword: {connectHost: 'connect:8080', vaults: {a: 1}, auth: {secretRef: {connectTokenSecretRef: {name: t, key: k}}}}}\n")),
    /// 1Password: at least one vault.
    OnePasswordVaults => def(Store, &["provider.onepassword"], "vaults", policy(
        "size(@.vaults) > 0",
        "must list at least one vault",
    ), sample!(SS, "  provider: {onepassword: {connectHost: 'http://c', vaults: {}, auth: {secretRef: {connectTokenSecretRef: {name: t, key: k}}}}}\n")),
    /// 1Password: vault order numbers are unique (ESO's `hasUniqueVaultNumbers`).
    OnePasswordVaultOrder => def(Store, &["provider.onepassword"], "vaults", Enforced::Policy {
        test: "size(@.vaults) > 400 || @.vaults.all(a, @.vaults.all(b, a == b || @.vaults[a] != @.vaults[b]))",
        message: "vault order numbers must be unique",
        message_expr: None,
        residual: Some(DUPLICATE_RESIDUAL),
    }, sample!(SS, "  provider: {onepassword: {connectHost: 'http://c', vaults: {a: 1, b: 1}, auth: {secretRef: {connectTokenSecretRef: {name: t, key: k}}}}}\n")),
    /// Doppler: exactly one of `auth.secretRef` or `auth.oidcConfig` (an ESO CRD rule).
    DopplerAuthExactlyOne => def(Store, &["provider.doppler.auth"], "", Enforced::Crd {
        rule: "(has(self.secretRef) && !has(self.oidcConfig)) || (!has(self.secretRef) && has(self.oidcConfig))",
        message: "Exactly one of 'secretRef' or 'oidcConfig' must be specified",
    }, sample!(SS, "  provider: {doppler: {auth: {}}}\n")),
    /// Doppler: the token selector names a Secret.
    DopplerTokenName => def(Store, &["provider.doppler.auth.secretRef.dopplerToken"], "name", policy(
        "has(@.name) && @.name != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {doppler: {auth: {secretRef: {dopplerToken: {key: k}}}}}\n")),
    /// Doppler: `oidcConfig.identity` is set.
    DopplerOidcIdentity => def(Store, &["provider.doppler.auth.oidcConfig"], "identity", policy(
        "@.identity.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {doppler: {auth: {oidcConfig: {identity: ' ', serviceAccountRef: {name: sa}}}}}\n")),
    /// Infisical: `secretsScope.projectSlug` is set.
    InfisicalProjectSlug => def(Store, &["provider.infisical.secretsScope"], "projectSlug", policy(
        "@.projectSlug.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {infisical: {auth: {tokenAuthCredentials: {accessToken: {name: t, key: k}}}, secretsScope: {projectSlug: '', environmentSlug: dev}}}\n")),
    /// Infisical: `secretsScope.environmentSlug` is set.
    InfisicalEnvironmentSlug => def(Store, &["provider.infisical.secretsScope"], "environmentSlug", policy(
        "@.environmentSlug.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {infisical: {auth: {tokenAuthCredentials: {accessToken: {name: t, key: k}}}, secretsScope: {projectSlug: p, environmentSlug: ''}}}\n")),
    /// Infisical: `secretsScope.secretsPath` is absolute.
    InfisicalSecretsPath => def(Store, &["provider.infisical.secretsScope"], "secretsPath", policy(
        "!has(@.secretsPath) || @.secretsPath == '' || @.secretsPath.startsWith('/')",
        "must start with /",
    ), sample!(SS, "  provider: {infisical: {auth: {tokenAuthCredentials: {accessToken: {name: t, key: k}}}, secretsScope: {projectSlug: p, environmentSlug: dev, secretsPath: payments}}}\n")),
    /// Infisical: `hostAPI` is an http(s) URL.
    InfisicalHostApi => def(Store, &["provider.infisical"], "hostAPI", policy(
        "!has(@.hostAPI) || @.hostAPI.trim() == '' || @.hostAPI.trim().startsWith('http://') || @.hostAPI.trim().startsWith('https://')",
        "must be an http:// or https:// URL",
    ), sample!(SS, "  provider: {infisical: {hostAPI: 'infisical.example/api', auth: {tokenAuthCredentials: {accessToken: {name: t, key: k}}}, secretsScope: {projectSlug: p, environmentSlug: dev}}}\n")),
    /// Infisical: `caBundle` and `caProvider` exclude each other.
    InfisicalCa => def(Store, &["provider.infisical"], "caBundle", policy(
        "!(has(@.caBundle) && has(@.caProvider))",
        "caBundle and caProvider are mutually exclusive",
    ), sample!(SS, "  provider: {infisical: {caBundle: YQ==, caProvider: {type: Secret, name: ca}, auth: {tokenAuthCredentials: {accessToken: {name: t, key: k}}}, secretsScope: {projectSlug: p, environmentSlug: dev}}}\n")),
    /// Infisical: exactly one authentication method.
    InfisicalAuthExactlyOne => def(Store, &["provider.infisical.auth"], "", policy(
        "[has(@.universalAuthCredentials), has(@.azureAuthCredentials), has(@.gcpIdTokenAuthCredentials), has(@.gcpIamAuthCredentials), has(@.jwtAuthCredentials), has(@.ldapAuthCredentials), has(@.ociAuthCredentials), has(@.kubernetesAuthCredentials), has(@.awsAuthCredentials), has(@.tokenAuthCredentials)].filter(x, x).size() == 1",
        "exactly one authentication method must be set",
    ), sample!(SS, "  provider: {infisical: {auth: {}, secretsScope: {projectSlug: p, environmentSlug: dev}}}\n")),
    /// Infisical: universal auth's selectors name a key.
    InfisicalUniversalKey => def(Store, &["provider.infisical.auth.universalAuthCredentials.clientId", "provider.infisical.auth.universalAuthCredentials.clientSecret"], "key", policy(
        "has(@.key) && @.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {infisical: {auth: {universalAuthCredentials: {clientId: {name: c, key: id}, clientSecret: {name: c}}}, secretsScope: {projectSlug: p, environmentSlug: dev}}}\n")),
    /// Bitwarden: `bitwardenServerSDKURL` is an https URL (the access token travels to it).
    BitwardenSdkUrl => def(Store, &["provider.bitwardensecretsmanager"], "bitwardenServerSDKURL", policy(
        "has(@.bitwardenServerSDKURL) && @.bitwardenServerSDKURL.trim().startsWith('https://')",
        "must be an https:// URL (the access token travels to it)",
    ), sample!(SS, "  provider: {bitwardensecretsmanager: {bitwardenServerSDKURL: 'http://sdk:9998', organizationID: o, projectID: p, auth: {secretRef: {credentials: {name: t, key: k}}}}}\n")),
    /// Bitwarden: `organizationID` is set.
    BitwardenOrganizationId => def(Store, &["provider.bitwardensecretsmanager"], "organizationID", policy(
        "@.organizationID.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {bitwardensecretsmanager: {bitwardenServerSDKURL: 'https://sdk:9998', organizationID: '', projectID: p, auth: {secretRef: {credentials: {name: t, key: k}}}}}\n")),
    /// sops (a syncret extension): a store names at least one way to recover data keys.
    SopsKeys => def(Store, &["provider.sops"], "keys", policy(
        "has(@.keys) && ((has(@.keys.age) && size(@.keys.age) > 0) || has(@.keys.vault) || has(@.keys.openBao) || has(@.keys.aws) || has(@.keys.azure))",
        "at least one of age, vault, openBao, aws or azure must be set",
    ), sample!(SS, "  provider: {sops: {keys: {}}}\n")),
    /// sops: an age identity's Secret selector names the Secret.
    SopsAgeSecretName => def(Store, &["provider.sops.keys.age[].secretRef"], "name", policy(
        "has(@.name) && @.name != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {sops: {keys: {age: [{secretRef: {key: k}}]}}}\n")),
    /// sops: an age identity's Secret selector names the key.
    SopsAgeSecretKey => def(Store, &["provider.sops.keys.age[].secretRef"], "key", policy(
        "has(@.key) && @.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {sops: {keys: {age: [{secretRef: {name: n}}]}}}\n")),
    /// Bitwarden: `projectID` is set.
    BitwardenProjectId => def(Store, &["provider.bitwardensecretsmanager"], "projectID", policy(
        "@.projectID.trim() != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {bitwardensecretsmanager: {bitwardenServerSDKURL: 'https://sdk:9998', organizationID: o, projectID: '', auth: {secretRef: {credentials: {name: t, key: k}}}}}\n")),
    /// Bitwarden: the access-token selector names a Secret.
    BitwardenCredentialsName => def(Store, &["provider.bitwardensecretsmanager.auth.secretRef.credentials"], "name", policy(
        "has(@.name) && @.name != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {bitwardensecretsmanager: {bitwardenServerSDKURL: 'https://sdk:9998', organizationID: o, projectID: p, auth: {secretRef: {credentials: {key: k}}}}}\n")),
    /// Bitwarden: the access-token selector names a key.
    BitwardenCredentialsKey => def(Store, &["provider.bitwardensecretsmanager.auth.secretRef.credentials"], "key", policy(
        "has(@.key) && @.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {bitwardensecretsmanager: {bitwardenServerSDKURL: 'https://sdk:9998', organizationID: o, projectID: p, auth: {secretRef: {credentials: {name: t}}}}}\n")),
    /// GitLab: `projectID` or `groupIDs` (ESO's `ValidateStore`).
    GitlabProjectOrGroups => def(Store, &["provider.gitlab"], "projectID", policy(
        "(has(@.projectID) && @.projectID.trim() != '') || (has(@.groupIDs) && size(@.groupIDs) > 0)",
        "projectID and groupIDs must not both be empty",
    ), sample!(SS, "  provider: {gitlab: {auth: {SecretRef: {accessToken: {name: t, key: k}}}}}\n")),
    /// GitLab: `inheritFromGroups` excludes `groupIDs` (ESO's `ValidateStore`).
    GitlabInheritWithGroupIds => def(Store, &["provider.gitlab"], "inheritFromGroups", policy(
        "!(has(@.inheritFromGroups) && @.inheritFromGroups && has(@.groupIDs) && size(@.groupIDs) > 0)",
        "defining groupIDs and inheritFromGroups = true is not allowed",
    ), sample!(SS, "  provider: {gitlab: {projectID: '42', groupIDs: ['7'], inheritFromGroups: true, auth: {SecretRef: {accessToken: {name: t, key: k}}}}}\n")),
    /// GitLab: `url` is an http(s) URL.
    GitlabUrl => def(Store, &["provider.gitlab"], "url", policy(
        "!has(@.url) || @.url.trim() == '' || @.url.trim().startsWith('http://') || @.url.trim().startsWith('https://')",
        "must be an http:// or https:// URL",
    ), sample!(SS, "  provider: {gitlab: {url: 'gitlab.example.com', projectID: '42', auth: {SecretRef: {accessToken: {name: t, key: k}}}}}\n")),
    /// GitLab: the access-token selector names a Secret.
    GitlabTokenName => def(Store, &["provider.gitlab.auth.SecretRef"], "accessToken.name", policy(
        "has(@.accessToken) && has(@.accessToken.name) && @.accessToken.name != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {gitlab: {projectID: '42', auth: {SecretRef: {accessToken: {key: k}}}}}\n")),
    /// GitLab: the access-token selector names a key.
    GitlabTokenKey => def(Store, &["provider.gitlab.auth.SecretRef"], "accessToken.key", policy(
        "has(@.accessToken) && has(@.accessToken.key) && @.accessToken.key != ''",
        "must not be empty",
    ), sample!(SS, "  provider: {gitlab: {projectID: '42', auth: {SecretRef: {accessToken: {name: t}}}}}\n")),

    // ----- PushSecret ------------------------------------------------------------------------------------
    /// `refreshInterval` is a non-negative Go duration.
    PsRefreshInterval => def(PushSecret, &[""], "refreshInterval", policy(
        "!has(@.refreshInterval) || DUR(@.refreshInterval)",
        "must be a non-negative Go duration such as 1h0m0s",
    ), sample!(PS, "  refreshInterval: often\n  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n")),
    /// Each `secretStoreRefs` entry sets `name` or `labelSelector`.
    PsStoreRef => def(PushSecret, &["secretStoreRefs[]"], "", policy(
        "(has(@.name) && @.name != '') || has(@.labelSelector)",
        "one of name or labelSelector must be set",
    ), sample!(PS, "  secretStoreRefs: [{kind: ClusterSecretStore}]\n  selector: {secret: {name: src}}\n")),
    /// `selector` sets exactly one of `secret` or `generatorRef`.
    PsSelectorExactlyOne => def(PushSecret, &[""], "selector",
        Enforced::Schema("minProperties: 1, maxProperties: 1"),
        sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {}\n")),
    /// `selector.secret` sets `name` or `selector`.
    PsSelectorSecret => def(PushSecret, &["selector.secret"], "", policy(
        "(has(@.name) && @.name != '') || has(@.selector)",
        "one of name or selector must be set",
    ), sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {}}\n")),
    /// `data[].match.remoteRef.remoteKey` is set.
    PsRemoteKey => def(PushSecret, &["data[]"], "match.remoteRef.remoteKey", policy(
        "@.match.remoteRef.remoteKey != ''",
        "must not be empty",
    ), sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  data: [{match: {remoteRef: {remoteKey: ''}}}]\n")),
    /// `dataTo[].storeRef` is set and names a store or a label selector (an ESO CRD rule).
    PsDataToStoreRef => def(PushSecret, &["dataTo[]"], "storeRef", Enforced::Crd {
        rule: "has(self.storeRef) && (has(self.storeRef.name) || has(self.storeRef.labelSelector))",
        message: "storeRef must specify either name or labelSelector",
    }, sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  dataTo: [{remoteKey: bundle}]\n")),
    /// `dataTo[].rewrite` cannot be combined with `remoteKey` (an ESO CRD rule).
    PsDataToRewriteWithRemoteKey => def(PushSecret, &["dataTo[]"], "rewrite", Enforced::Crd {
        rule: "!has(self.remoteKey) || !has(self.rewrite) || size(self.rewrite) == 0",
        message: "remoteKey and rewrite are mutually exclusive: rewrite is only supported in per-key mode (without remoteKey)",
    }, sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  dataTo: [{storeRef: {name: s}, remoteKey: bundle, rewrite: [{transform: {template: x}}]}]\n")),
    /// `dataTo[].match.regexp` compiles.
    PsDataToMatchRegexp => def(PushSecret, &["dataTo[].match"], "regexp", regex_rule(
        "!has(@.regexp) || REGEX(@.regexp)",
    ), sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  dataTo: [{storeRef: {name: s}, match: {regexp: '+'}}]\n")),
    /// A `dataTo` rewrite sets exactly one of `regexp` or `transform` (an ESO CRD rule).
    PsRewriteExactlyOne => def(PushSecret, &["dataTo[].rewrite[]"], "", Enforced::Crd {
        rule: "(has(self.regexp) && !has(self.transform)) || (!has(self.regexp) && has(self.transform))",
        message: "exactly one of regexp or transform must be set",
    }, sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  dataTo: [{storeRef: {name: s}, rewrite: [{regexp: {source: a, target: b}, transform: {template: y}}]}]\n")),
    /// `dataTo[].rewrite[].regexp.source` compiles.
    PsRewriteRegexp => def(PushSecret, &["dataTo[].rewrite[].regexp"], "source", regex_rule(
        "REGEX(@.source)",
    ), sample!(PS, "  secretStoreRefs: [{name: s}]\n  selector: {secret: {name: src}}\n  dataTo: [{storeRef: {name: s}, rewrite: [{regexp: {source: '(', target: x}}]}]\n")),

    // ----- Cluster kinds -----------------------------------------------------------------------------------
    /// ClusterExternalSecret `refreshTime` is a non-negative Go duration.
    CesRefreshTime => def(ClusterExternalSecret, &[""], "refreshTime", policy(
        "!has(@.refreshTime) || DUR(@.refreshTime)",
        "must be a non-negative Go duration such as 1m",
    ), sample!(CES, "  refreshTime: 1y\n  externalSecretSpec: {data: [{secretKey: a, remoteRef: {key: a}}]}\n")),
    /// ClusterPushSecret `refreshTime` is a non-negative Go duration.
    CpsRefreshTime => def(ClusterPushSecret, &[""], "refreshTime", policy(
        "!has(@.refreshTime) || DUR(@.refreshTime)",
        "must be a non-negative Go duration such as 1m",
    ), sample!(CPS, "  refreshTime: 1w\n  pushSecretSpec: {secretStoreRefs: [{name: s}], selector: {secret: {name: s}}}\n")),
}
