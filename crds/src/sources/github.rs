//! GitHubSource (`sources.knative.dev/v1alpha1`, eventing-github): GitHub webhooks as
//! CloudEvents (GHS-01..04).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{namespace_of, source_status, validate_source};
use crate::duck::{CloudEventOverrides, Destination, SecretValueFromSource};
use crate::meta::{validate_object_meta, NameRule};
use crate::{field, index, Admission, FieldError};

/// Prefix of emitted event types: `dev.knative.source.github.<event>`.
pub const EVENT_TYPE_PREFIX: &str = "dev.knative.source.github";
/// Default GitHub API URL.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The webhook event types a GitHubSource may subscribe to (the CRD's enum).
pub const EVENT_TYPES: &[&str] = &[
    "check_suite",
    "commit_comment",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "fork",
    "gollum",
    "installation",
    "integration_installation",
    "issue_comment",
    "issues",
    "label",
    "member",
    "membership",
    "milestone",
    "organization",
    "org_block",
    "page_build",
    "ping",
    "project_card",
    "project_column",
    "project",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
    "release",
    "repository",
    "status",
    "team",
    "team_add",
    "watch",
];

/// The desired state of a GitHubSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1alpha1",
    kind = "GitHubSource",
    doc = "GitHubSource: GitHub webhook deliveries as CloudEvents.",
    namespaced,
    status = "GitHubSourceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "eventing",
    category = "sources",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#,
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitHubSourceSpec {
    /// Repository (`owner/repo`) or organization (`org`) to receive events from.
    #[serde(default)]
    pub owner_and_repository: String,
    /// Webhook events to subscribe to (at least one).
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Secret holding a GitHub token able to manage webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretValueFromSource>,
    /// Secret holding the webhook secret (HMAC key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_token: Option<SecretValueFromSource>,
    /// GitHub API URL, for GitHub Enterprise (default `https://api.github.com`).
    #[serde(default, rename = "githubAPIURL", skip_serializing_if = "Option::is_none")]
    pub github_api_url: Option<String>,
    /// Register the webhook with an `https` (true) or `http` (false) URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// Service account of the receive adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Where events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Extension attributes added to every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_overrides: Option<CloudEventOverrides>,
}

source_status! {
    /// Status of a GitHubSource (`SecretsProvided`, `SinkProvided`, `WebhookConfigured`).
    GitHubSourceStatus {
        /// ID of the registered webhook.
        #[serde(default, rename = "webhookIDKey", skip_serializing_if = "Option::is_none")]
        webhook_id_key: Option<String>,
        /// Where GitHub delivers: the receiver's URL on the gateway (`--public-url` when set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<crate::duck::Addressable>,
    }
}

fn github_name_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Checks `owner/repository` or `organization`.
pub fn check_owner_and_repository(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|p| github_name_ok(p)) {
        return Err(format!(
            "invalid value {s:?}: expected \"owner/repository\" or \"organization\" (letters, digits, '-', '_' and '.')"
        ));
    }
    Ok(())
}

impl Admission for GitHubSource {
    /// Defaults the sink's namespace.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        self.spec.sink.set_default_namespace(&ns);
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        errs.extend(validate_source(&spec.sink, spec.ce_overrides.as_ref()));
        if spec.owner_and_repository.is_empty() {
            errs.push(FieldError::missing("spec.ownerAndRepository"));
        } else if let Err(e) = check_owner_and_repository(&spec.owner_and_repository) {
            errs.push(FieldError::new("spec.ownerAndRepository", e));
        }
        if spec.event_types.is_empty() {
            errs.push(FieldError::missing("spec.eventTypes"));
        }
        for (i, t) in spec.event_types.iter().enumerate() {
            if !EVENT_TYPES.contains(&t.as_str()) {
                errs.push(FieldError::new(
                    index("spec.eventTypes", i),
                    format!("unsupported value {t:?}: not a GitHub webhook event type"),
                ));
            }
        }
        for (v, name) in [(&spec.access_token, "accessToken"), (&spec.secret_token, "secretToken")] {
            let p = field("spec", name);
            match v.as_ref().and_then(|v| v.secret_key_ref.as_ref()) {
                None if v.is_none() => errs.push(FieldError::missing(p)),
                None => {}
                Some(sel) => errs.extend(sel.validate(&field(&p, "secretKeyRef"))),
            }
        }
        if let Some(u) = &spec.github_api_url {
            if url::Url::parse(u).map(|u| !u.has_host()).unwrap_or(true) {
                errs.push(FieldError::invalid("spec.githubAPIURL", u));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let mut g = GitHubSource::new("g", GitHubSourceSpec::default());
        g.spec.sink.uri = Some("http://x/".into());
        g.set_defaults();
        let errs = g.validate();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.ownerAndRepository", "spec.eventTypes", "spec.accessToken", "spec.secretToken"]
        );
        g.spec.owner_and_repository = "<YOUR USER>/<YOUR REPO>".into();
        g.spec.event_types = vec!["push".into(), "pushed".into()];
        let errs = g.validate();
        assert_eq!(errs[0].path, "spec.ownerAndRepository");
        assert_eq!(errs[1].path, "spec.eventTypes[1]");
        assert!(check_owner_and_repository("knative/docs").is_ok());
        assert!(check_owner_and_repository("knative").is_ok());
        assert!(check_owner_and_repository("a/b/c").is_err());
    }
}
