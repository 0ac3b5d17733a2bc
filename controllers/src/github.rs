//! The GitHubSource controller (GHS-01/02): writes the source's status
//! (`sluice_reconcile::source::github_status`) and, when an `accessToken` is given, keeps its
//! webhook on GitHub in line with the spec through GitHub's REST API
//! (`sluice_sources::github::hooks`): created once the sink resolves, edited when the spec or the
//! receiver's URL changes, deleted when the source is (a finalizer holds the source until then;
//! a deletion GitHub refuses is logged and does not block it, as in Knative).

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::{Client, Resource, ResourceExt};
use serde_json::{json, Value};
use sluice_crds::duck::SecretValueFromSource;
use sluice_crds::sources::GitHubSource;
use sluice_reconcile::source::{self, GitHubFacts};
use sluice_reconcile::Environment;
use sluice_sources::github::hooks::{GitHubApi, HookSpec};

use crate::core::{label, Backoff};
use crate::mirror::Mirror;
use crate::status::write_status;
use crate::Error;

/// Holds a GitHubSource with a registered webhook until the webhook is deleted.
pub const FINALIZER: &str = "githubsources.sources.knative.dev";

struct Context {
    client: Client,
    env: Environment,
    mirror: Arc<Mirror>,
    backoff: Backoff,
}

/// Reads a `secretKeyRef` of the source; `field` names it in errors.
async fn secret_value(api: &Api<Secret>, field: &str, value: &Option<SecretValueFromSource>) -> Result<Option<String>, (String, String)> {
    let Some(sel) = value.as_ref().and_then(|v| v.secret_key_ref.as_ref()) else {
        return Ok(None);
    };
    let secret = api
        .get_opt(&sel.name)
        .await
        .map_err(|e| ("SecretNotReadable".to_string(), format!("{field}: {e}")))?
        .ok_or_else(|| ("SecretNotFound".to_string(), format!("{field}: secret {} not found", sel.name)))?;
    let bytes = secret.data.as_ref().and_then(|d| d.get(&sel.key)).ok_or_else(|| {
        (
            "SecretKeyNotFound".to_string(),
            format!("{field}: secret {} has no key {:?}", sel.name, sel.key),
        )
    })?;
    String::from_utf8(bytes.0.clone()).map(|s| Some(s.trim().to_string())).map_err(|_| {
        (
            "SecretInvalid".to_string(),
            format!("{field}: key {:?} of secret {} is not text", sel.name, sel.key),
        )
    })
}

/// The API client of a source with an access token.
fn github_api(source: &GitHubSource, token: &str) -> Result<GitHubApi, (String, String)> {
    let url = source
        .spec
        .github_api_url
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| sluice_crds::sources::github::DEFAULT_API_URL.to_string());
    GitHubApi::new(&url, token).map_err(|e| ("WebhookConfigurationFailed".to_string(), e.to_string()))
}

/// Deletes the source's webhook (if it has one) and lets the source go.
async fn finalize(source: &GitHubSource, api: &Api<GitHubSource>, secrets: &Api<Secret>) -> Result<(), Error> {
    let id = source
        .status
        .as_ref()
        .and_then(|s| s.webhook_id_key.as_deref())
        .and_then(|i| i.parse::<i64>().ok());
    if let Some(id) = id {
        let deleted = match secret_value(secrets, "spec.accessToken.secretKeyRef", &source.spec.access_token).await {
            Ok(Some(token)) => match github_api(source, &token) {
                Ok(gh) => gh.delete(&source.spec.owner_and_repository, id).await.map_err(|e| e.to_string()),
                Err((_, m)) => Err(m),
            },
            Ok(None) => Err("no accessToken".into()),
            Err((_, m)) => Err(m),
        };
        if let Err(e) = deleted {
            tracing::warn!(source = %label(source), hook = id, error = %e, "WebhookDeletionSkipped: the webhook stays on GitHub");
        }
    }
    let finalizers: Vec<String> = source.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": source.resource_version()}});
    api.patch(&source.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn reconcile(source: Arc<GitHubSource>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = source.namespace().unwrap_or_default();
    let api: Api<GitHubSource> = Api::namespaced(ctx.client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    if source.meta().deletion_timestamp.is_some() {
        if source.finalizers().iter().any(|f| f == FINALIZER) {
            finalize(&source, &api, &secrets).await?;
        }
        return Ok(Action::await_change());
    }
    let value = serde_json::to_value(source.as_ref())?;
    let sink = ctx.mirror.with_objects(|objects| source::sink(&value, &ctx.env, objects));
    let token = secret_value(&secrets, "spec.accessToken.secretKeyRef", &source.spec.access_token).await;
    let secret = secret_value(&secrets, "spec.secretToken.secretKeyRef", &source.spec.secret_token).await;
    let secrets_ok = match (&token, &secret) {
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        _ => Ok(()),
    };
    let url = source::webhook_url(&value, &ctx.env);
    let status = source.status.clone().unwrap_or_default();
    let known = status.webhook_id_key.as_deref().and_then(|i| i.parse::<i64>().ok());
    let webhook = match (&token, &sink) {
        (Ok(Some(token)), Ok(_)) if secrets_ok.is_ok() => {
            if !source.finalizers().iter().any(|f| f == FINALIZER) {
                // The finalizer first, so that a hook is never created for a source that can go
                // without deleting it; the write comes back as a change.
                let mut finalizers = source.finalizers().to_vec();
                finalizers.push(FINALIZER.to_string());
                let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": source.resource_version()}});
                api.patch(&source.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                return Ok(Action::await_change());
            }
            let spec = HookSpec {
                events: source.spec.event_types.clone(),
                url: url.clone(),
                secret: secret.clone().ok().flatten(),
            };
            let changed = status.base.observed_generation != source.meta().generation
                || status.address.as_ref().and_then(|a| a.url.as_deref()) != Some(url.as_str());
            let repo = &source.spec.owner_and_repository;
            match (github_api(&source, token), known) {
                (Err(e), _) => Err(e),
                (Ok(gh), None) => gh.create(repo, &spec).await.map(Some).map_err(|e| {
                    (
                        "WebhookConfigurationFailed".to_string(),
                        format!("creating the webhook of {repo}: {e}"),
                    )
                }),
                (Ok(gh), Some(id)) if changed => gh.edit(repo, id, &spec).await.map(|()| Some(id)).map_err(|e| {
                    (
                        "WebhookConfigurationFailed".to_string(),
                        format!("editing webhook {id} of {repo}: {e}"),
                    )
                }),
                (Ok(_), Some(id)) => Ok(Some(id)),
            }
        }
        (Ok(Some(_)), _) => Err((
            "WebhookNotConfigured".to_string(),
            "the webhook is registered once the secrets and the sink resolve".to_string(),
        )),
        _ => Ok(None),
    };
    let failed = webhook.is_err() && secrets_ok.is_ok() && sink.is_ok();
    let facts = GitHubFacts {
        secrets: secrets_ok,
        webhook,
    };
    let new_status: Value = source::github_status(&value, &sink, &facts, &ctx.env);
    write_status(&api, &value, &new_status).await?;
    if failed {
        // GitHub refused or could not be reached: try again with backoff.
        let reason = facts.webhook.err().map(|(_, m)| m).unwrap_or_default();
        return Ok(Action::requeue(ctx.backoff.failed(&label(source.as_ref()), &reason)));
    }
    ctx.backoff.succeeded(&label(source.as_ref()));
    Ok(Action::await_change())
}

fn error_policy(source: Arc<GitHubSource>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff.failed(&label(source.as_ref()), error))
}

/// Runs the GitHubSource controller; Secrets' changes requeue the sources of their namespace.
pub async fn run(client: Client, env: Environment, mirror: Arc<Mirror>) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        env,
        mirror,
        backoff: Backoff::default(),
    });
    let controller = Controller::new(Api::<GitHubSource>::all(client.clone()), watcher::Config::default());
    let store = controller.store();
    let sinks = crate::core::requeues(store.clone(), ctx.mirror.changes(), crate::core::ADDRESSABLE);
    controller
        .reconcile_on(sinks)
        .watches(Api::<Secret>::all(client), watcher::Config::default(), move |secret: Secret| {
            let namespace = secret.namespace();
            store
                .state()
                .into_iter()
                .filter(|s| s.namespace() == namespace)
                .map(|s| kube::runtime::reflector::ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
