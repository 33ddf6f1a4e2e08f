//! Kubernetes `Status` errors, shaped exactly as kube-apiserver shapes them, because clients
//! (kube-rs, the provider) branch on `code`, `reason` and `details.causes[].field`.

use serde_json::{json, Value};

use crate::kinds::Kind;

/// One field-level validation failure (apimachinery's `field.Error`).
#[derive(Debug, Clone)]
pub struct FieldError {
    pub ty: FieldErrorType,
    pub field: String,
    /// The offending value, already rendered the Go way (`"x"` for strings, `0` for numbers).
    pub bad: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Forbidden,
    Invalid,
    NotSupported,
    TooLong,
}

impl FieldErrorType {
    fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Forbidden => "FieldValueForbidden",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::TooLong => "FieldValueTooLong",
        }
    }
    fn text(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Forbidden => "Forbidden",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::TooLong => "Too long",
        }
    }
}

/// Renders a JSON value as Go's `%q` / `%v` would in a field error.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

impl FieldError {
    pub fn required(field: &str, detail: &str) -> Self {
        Self {
            ty: FieldErrorType::Required,
            field: field.into(),
            bad: None,
            detail: detail.into(),
        }
    }
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            ty: FieldErrorType::Forbidden,
            field: field.into(),
            bad: None,
            detail: detail.into(),
        }
    }
    pub fn invalid(field: &str, bad: &Value, detail: &str) -> Self {
        Self {
            ty: FieldErrorType::Invalid,
            field: field.into(),
            bad: Some(go_value(bad)),
            detail: detail.into(),
        }
    }
    pub fn not_supported(field: &str, bad: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Self {
            ty: FieldErrorType::NotSupported,
            field: field.into(),
            bad: Some(go_value(bad)),
            detail: format!("supported values: {}", list.join(", ")),
        }
    }

    /// `field.TooLong`: the value has more than `max` bytes (the value is not shown).
    pub fn too_long(field: &str, max: usize) -> Self {
        Self {
            ty: FieldErrorType::TooLong,
            field: field.into(),
            bad: None,
            detail: format!("must have at most {max} bytes"),
        }
    }

    /// `ErrorBody()`: the message without the field path, as used in `details.causes[].message`.
    pub fn body(&self) -> String {
        let mut s = match (&self.bad, self.ty) {
            (Some(b), FieldErrorType::Invalid | FieldErrorType::NotSupported) => {
                format!("{}: {}", self.ty.text(), b)
            }
            _ => self.ty.text().to_string(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// An API failure that becomes a `Status` body with the matching HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

fn details(kind: &Kind, name: &str, kind_field: &str) -> Value {
    let mut d = json!({ "name": name, "kind": kind_field });
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    d
}

impl ApiError {
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    pub fn not_found(kind: &Kind, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} {:?} not found", kind.qualified_resource(), name),
            details: Some(details(kind, name, kind.plural)),
        }
    }
    pub fn already_exists(kind: &Kind, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} {:?} already exists", kind.qualified_resource(), name),
            details: Some(details(kind, name, kind.plural)),
        }
    }
    pub fn conflict(kind: &Kind, name: &str, why: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {:?}: {}",
                kind.qualified_resource(),
                name,
                why
            ),
            details: Some(details(kind, name, kind.plural)),
        }
    }
    pub fn stale(kind: &Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    pub fn invalid(kind: &Kind, name: &str, errs: &[FieldError]) -> Self {
        let agg = if errs.len() == 1 {
            errs[0].to_string()
        } else {
            format!(
                "[{}]",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut d = details(kind, name, kind.kind);
        d["causes"] = Value::Array(
            errs.iter()
                .map(|e| json!({"reason": e.ty.reason(), "message": e.body(), "field": e.field}))
                .collect(),
        );
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{} {:?} is invalid: {}", kind.qualified_kind(), name, agg),
            details: Some(d),
        }
    }
    pub fn forbidden(kind: &Kind, name: &str, why: &str) -> Self {
        Self {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{} {:?} is forbidden: {}",
                kind.qualified_resource(),
                name,
                why
            ),
            details: Some(details(kind, name, kind.plural)),
        }
    }
    /// NamespaceLifecycle admission refusing new content in a Terminating namespace: a 403 whose
    /// single cause names `metadata.namespace` with reason `NamespaceTerminating`.
    pub fn namespace_terminating(kind: &Kind, name: &str, ns: &str) -> Self {
        let why = format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        );
        let mut e = Self::forbidden(kind, name, &why);
        if let Some(d) = e.details.as_mut() {
            d["causes"] = json!([{"reason": "NamespaceTerminating", "message": why, "field": "metadata.namespace"}]);
        }
        e
    }
    /// A PUT without `metadata.resourceVersion` on a kind whose strategy forbids unconditional
    /// updates. Unlike other 422s, the real server puts the resource (not the Kind) in details.
    pub fn resource_version_required(kind: &Kind, name: &str) -> Self {
        let cause = FieldError::invalid(
            "metadata.resourceVersion",
            &json!(0),
            "must be specified for an update",
        );
        let mut d = details(kind, name, kind.plural);
        d["causes"] =
            json!([{"reason": cause.ty.reason(), "message": cause.body(), "field": cause.field}]);
        Self {
            code: 422,
            reason: "Invalid",
            message: format!(
                "{} {:?} is invalid: {}",
                kind.qualified_resource(),
                name,
                cause
            ),
            details: Some(d),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }
    pub fn unauthorized() -> Self {
        Self {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        }
    }
    pub fn method_not_allowed(kind: &Kind, verb: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "{verb} is not supported on resources of kind {:?}",
                kind.plural
            ),
            details: None,
        }
    }
    pub fn not_found_path() -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }
    pub fn unsupported_media(ct: &str) -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"),
            details: None,
        }
    }
    pub fn expired(message: String) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message,
            details: None,
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
        }
    }
}
