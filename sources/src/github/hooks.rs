//! A GitHubSource's webhook on GitHub (GHS-02), through GitHub's REST API with `octocrab`:
//! created on the repository (`owner/repo`) or the organisation (`org`) with the source's
//! events, `content_type: json`, its secret and the receiver's public URL; edited when the
//! spec changes; deleted when the source is. `githubAPIURL` points it at GitHub Enterprise.

use octocrab::Octocrab;
use serde_json::{json, Value};

/// A call to GitHub's API failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl From<octocrab::Error> for HookError {
    fn from(e: octocrab::Error) -> Self {
        match e {
            octocrab::Error::GitHub { source, .. } => HookError(format!("GitHub answered: {}", source.message)),
            other => HookError(other.to_string()),
        }
    }
}

/// What the webhook says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    /// The events it sends.
    pub events: Vec<String>,
    /// Where it sends them: the receiver's public URL.
    pub url: String,
    /// The secret it signs them with.
    pub secret: Option<String>,
}

impl HookSpec {
    /// The body of a create or edit call.
    fn body(&self) -> Value {
        let mut config = json!({"url": self.url, "content_type": "json", "insecure_ssl": "0"});
        if let Some(secret) = &self.secret {
            config["secret"] = json!(secret);
        }
        json!({"name": "web", "active": true, "events": self.events, "config": config})
    }
}

/// The hooks route of `owner/repo` (a repository) or `org` (an organisation).
fn hooks_route(owner_and_repository: &str) -> String {
    match owner_and_repository.split_once('/') {
        Some((owner, repo)) => format!("/repos/{owner}/{repo}/hooks"),
        None => format!("/orgs/{owner_and_repository}/hooks"),
    }
}

/// GitHub's API with a source's access token.
pub struct GitHubApi {
    client: Octocrab,
}

impl GitHubApi {
    /// A client of the API at `api_url` (`https://api.github.com`, or GitHub Enterprise's).
    pub fn new(api_url: &str, token: &str) -> Result<Self, HookError> {
        let client = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| HookError(format!("githubAPIURL {api_url:?}: {e}")))?
            .personal_token(token.to_string())
            .build()?;
        Ok(Self { client })
    }

    /// Creates the webhook; returns its id.
    pub async fn create(&self, owner_and_repository: &str, spec: &HookSpec) -> Result<i64, HookError> {
        let created: Value = self.client.post(hooks_route(owner_and_repository), Some(&spec.body())).await?;
        created["id"]
            .as_i64()
            .ok_or_else(|| HookError(format!("GitHub's answer to creating the hook has no id: {created}")))
    }

    /// Makes webhook `id` say `spec`.
    pub async fn edit(&self, owner_and_repository: &str, id: i64, spec: &HookSpec) -> Result<(), HookError> {
        let route = format!("{}/{id}", hooks_route(owner_and_repository));
        let _: Value = self.client.patch(route, Some(&spec.body())).await?;
        Ok(())
    }

    /// Deletes webhook `id`; one that is already gone counts as deleted.
    pub async fn delete(&self, owner_and_repository: &str, id: i64) -> Result<(), HookError> {
        let route = format!("{}/{id}", hooks_route(owner_and_repository));
        let response = self.client._delete(route, None::<&()>).await?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(HookError(format!("GitHub answered {status} to deleting hook {id}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_go_to_the_repository_or_the_organisation() {
        assert_eq!(hooks_route("octo/hello"), "/repos/octo/hello/hooks");
        assert_eq!(hooks_route("octo"), "/orgs/octo/hooks");
        let body = HookSpec {
            events: vec!["push".into()],
            url: "https://sluice.example/githubsources/default/gh".into(),
            secret: Some("s".into()),
        }
        .body();
        assert_eq!(body["config"]["content_type"], "json");
        assert_eq!(body["config"]["secret"], "s");
        assert_eq!(body["events"][0], "push");
        assert_eq!(body["active"], true);
    }
}
