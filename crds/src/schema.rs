//! Small schema helpers for fields whose OpenAPI shape must match ESO's exactly, and serde predicates.
use schemars::{Schema, SchemaGenerator, json_schema};

/// Marks a field whose `null` the apiserver must keep (ESO's `+nullable`). The CRD generator strips
/// `nullable` everywhere else, so that the apiserver prunes nulls before our types ever see them. The marker
/// rides in `title` (which the generator drops) because the CRD schema type keeps no unknown keywords.
pub(crate) const NULLABLE_MARKER: &str = "x-syncret-nullable";

/// `{type: integer}` without a `format` (Go `uint8` and friends).
pub(crate) fn integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// Arbitrary JSON kept as is (`apiextensionsv1.JSON`, e.g. PushSecret `metadata`).
pub(crate) fn preserve_unknown_fields(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// A nullable RFC 3339 timestamp (ESO's `+nullable metav1.Time`, e.g. `status.refreshTime`).
pub(crate) fn nullable_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time", "title": NULLABLE_MARKER })
}

/// serde `skip_serializing_if` for values equal to their type's default (`false`, `""`, the default variant).
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A `metav1.LabelSelector`, with the list/map markers ESO's CRDs carry (`atomic`, so server-side apply
/// replaces a selector as a whole).
pub(crate) fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A label query over a set of resources. matchLabels and matchExpressions are ANDed; an empty selector matches everything.",
        "type": "object",
        "properties": {
            "matchExpressions": {
                "description": "A list of label selector requirements, ANDed.",
                "type": "array",
                "items": {
                    "description": "A selector that contains values, a key, and an operator that relates the key and values.",
                    "type": "object",
                    "properties": {
                        "key": { "description": "The label key that the selector applies to.", "type": "string" },
                        "operator": {
                            "description": "In, NotIn, Exists or DoesNotExist.",
                            "type": "string"
                        },
                        "values": {
                            "description": "Values for In and NotIn (non-empty); empty for Exists and DoesNotExist.",
                            "type": "array",
                            "items": { "type": "string" },
                            "x-kubernetes-list-type": "atomic"
                        }
                    },
                    "required": ["key", "operator"]
                },
                "x-kubernetes-list-type": "atomic"
            },
            "matchLabels": {
                "description": "Labels that must all match ({key,value} pairs).",
                "type": "object",
                "additionalProperties": { "type": "string" }
            }
        },
        "x-kubernetes-map-type": "atomic"
    })
}

/// A list of label selectors (see [`label_selector`]).
pub(crate) fn label_selectors(generator: &mut SchemaGenerator) -> Schema {
    let item = label_selector(generator);
    json_schema!({ "type": "array", "items": item })
}
