//! The process runtime: keeps the wanted number of instances of each Revision running as child
//! processes on this machine.
//!
//! Each instance is supervised by its own task: it picks a free loopback port, starts the
//! command with `PORT` and `K_*` set and `$(VAR)`s expanded, appends stdout and stderr to the
//! instance's log file, probes readiness every few milliseconds until it passes, and then waits.
//! A process that exits on its own is reported (its exit code and last lines of output) and
//! restarted after a backoff that doubles up to a limit. A stopped instance gets SIGTERM (its
//! whole process group, so a server's workers stop too), and SIGKILL after the grace period.
//!
//! Locks are plain mutexes held for map updates only, never across an await. Every change of
//! state bumps a counter in a `watch` channel, which the activator and the Revision controller
//! wait on.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::expand::expand;
use crate::probe::probe_once;
use crate::workload::{RevisionKey, Workload};

/// How the runtime starts, probes and restarts instances.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Where instance logs are written: `{logs_dir}/{namespace}/{revision}/{instance}.log`.
    pub logs_dir: PathBuf,
    /// Time between readiness probes of a starting instance.
    pub probe_interval: Duration,
    /// The first wait before a crashed instance is restarted; it doubles per crash.
    pub restart_backoff: Duration,
    /// The longest wait before a restart.
    pub max_restart_backoff: Duration,
    /// The longest grace period a stop waits for, whatever `timeoutSeconds` says.
    pub max_grace_period: Duration,
    /// How long a started instance has to pass its readiness probe; past it the instance is
    /// reported (`ReadinessProbeFailed`), stopped and started again after the backoff.
    pub startup_timeout: Duration,
}

impl RuntimeOptions {
    /// Defaults, with logs under `logs_dir`: probes every 5 ms for up to 60 s, restarts after
    /// 1 s doubling to 30 s, at most 30 s between SIGTERM and SIGKILL.
    pub fn new(logs_dir: impl Into<PathBuf>) -> Self {
        Self {
            logs_dir: logs_dir.into(),
            probe_interval: Duration::from_millis(5),
            restart_backoff: Duration::from_secs(1),
            max_restart_backoff: Duration::from_secs(30),
            max_grace_period: Duration::from_secs(30),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceState {
    /// Started, not yet passing its readiness probe.
    Starting,
    /// Passing its readiness probe: it takes requests.
    Ready,
    /// Exited on its own, waiting to be restarted.
    CrashBackoff,
    /// Being stopped.
    Stopping,
}

/// Why the last instance that failed did (`ContainerHealthy=False`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Short reason, such as `ExitCode1`.
    pub reason: String,
    /// What happened, with the process's last lines of output.
    pub message: String,
}

/// What one Revision has, as the runtime sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionState {
    /// Instances wanted.
    pub desired: u32,
    /// Instances that exist and are not being stopped (ready or not).
    pub actual: u32,
    /// Addresses of the ready instances.
    pub ready: Vec<SocketAddr>,
    /// The last crash, until an instance has become ready since.
    pub failure: Option<Failure>,
    /// Restarts after crashes, over all instances.
    pub restarts: u32,
    /// When the most recent instance became ready, measured from its start: the app's own
    /// start time.
    pub last_start_time: Option<Duration>,
}

/// What the supervisor of an instance shares with the runtime.
struct InstanceShared {
    state: InstanceState,
    port: u16,
}

struct Instance {
    id: u32,
    /// What it was started from; an instance of an older workload is replaced.
    workload: Arc<Workload>,
    shared: Arc<Mutex<InstanceShared>>,
    stop: watch::Sender<bool>,
}

struct RevisionEntry {
    workload: Arc<Workload>,
    desired: u32,
    instances: Vec<Instance>,
    failure: Option<Failure>,
    restarts: u32,
    last_start_time: Option<Duration>,
    next_id: u32,
}

/// Runs Revisions as child processes. See the module documentation.
pub struct ProcessRuntime {
    options: RuntimeOptions,
    revisions: Mutex<HashMap<RevisionKey, RevisionEntry>>,
    changed: watch::Sender<u64>,
    supervisors: Mutex<tokio::task::JoinSet<()>>,
}

impl ProcessRuntime {
    /// A runtime with no revisions.
    pub fn new(options: RuntimeOptions) -> Arc<Self> {
        Arc::new(Self {
            options,
            revisions: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            supervisors: Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    /// The options it runs with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// A receiver that sees a new value after every change of any revision's state.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RevisionKey, RevisionEntry>> {
        self.revisions.lock().expect("runtime lock poisoned")
    }

    /// Sets what `workload.key` runs. Instances already running keep running what they were
    /// started with (revisions are immutable); new ones start with this.
    pub fn set_workload(self: &Arc<Self>, workload: Workload) {
        let mut revisions = self.lock();
        let key = workload.key.clone();
        match revisions.get_mut(&key) {
            Some(entry) => {
                if *entry.workload != workload {
                    // A changed env (a SinkBinding's sink, a ContainerSource's template):
                    // the running instances are replaced, each once a new one is ready.
                    entry.workload = Arc::new(workload);
                    let desired = entry.desired;
                    drop(revisions);
                    self.scale(&key, desired);
                }
            }
            None => {
                revisions.insert(
                    key,
                    RevisionEntry {
                        workload: Arc::new(workload),
                        desired: 0,
                        instances: Vec::new(),
                        failure: None,
                        restarts: 0,
                        last_start_time: None,
                        next_id: 1,
                    },
                );
            }
        }
    }

    /// Whether the runtime knows `key`.
    pub fn knows(&self, key: &RevisionKey) -> bool {
        self.lock().contains_key(key)
    }

    /// Starts or stops instances of `key` until `replicas` of its current workload exist.
    /// Instances being stopped are not counted; when fewer are wanted the ones not yet ready
    /// go first, then the newest. Instances of an older workload stay while they are needed
    /// to keep `replicas` ready, and are stopped as new ones become ready (a rolling
    /// replacement). Unknown revisions are ignored.
    pub fn scale(self: &Arc<Self>, key: &RevisionKey, replicas: u32) {
        let mut started = Vec::new();
        {
            let mut revisions = self.lock();
            let Some(entry) = revisions.get_mut(key) else {
                return;
            };
            entry.desired = replicas;
            entry.instances.retain(|i| !i.stop.is_closed());
            let is_ready = |i: &Instance| i.shared.lock().expect("instance lock").state == InstanceState::Ready;
            let (live, outdated): (Vec<usize>, Vec<usize>) = (0..entry.instances.len())
                .filter(|&i| !*entry.instances[i].stop.borrow())
                .partition(|&i| Arc::ptr_eq(&entry.instances[i].workload, &entry.workload));
            let ready_current = live.iter().filter(|&&i| is_ready(&entry.instances[i])).count() as u32;
            // Older instances still needed: as many as `replicas` lacks ready ones, ready first.
            let mut outdated = outdated;
            outdated.sort_by_key(|&i| std::cmp::Reverse(is_ready(&entry.instances[i])));
            for &i in outdated.iter().skip(replicas.saturating_sub(ready_current) as usize) {
                entry.instances[i].stop.send_replace(true);
                entry.instances[i].shared.lock().expect("instance lock").state = InstanceState::Stopping;
            }
            let live_count = live.len() as u32;
            if live_count < replicas {
                for _ in live_count..replicas {
                    let id = entry.next_id;
                    entry.next_id += 1;
                    let shared = Arc::new(Mutex::new(InstanceShared {
                        state: InstanceState::Starting,
                        port: 0,
                    }));
                    let (stop, stopped) = watch::channel(false);
                    entry.instances.push(Instance {
                        id,
                        workload: entry.workload.clone(),
                        shared: shared.clone(),
                        stop,
                    });
                    started.push((id, entry.workload.clone(), shared, stopped));
                }
            } else if live_count > replicas {
                let mut order = live;
                // Not ready first, then newest first.
                order.sort_by_key(|&i| {
                    let ready = entry.instances[i].shared.lock().expect("instance lock").state == InstanceState::Ready;
                    (ready, std::cmp::Reverse(entry.instances[i].id))
                });
                for &i in order.iter().take((live_count - replicas) as usize) {
                    entry.instances[i].stop.send_replace(true);
                    entry.instances[i].shared.lock().expect("instance lock").state = InstanceState::Stopping;
                }
            }
        }
        let mut supervisors = self.supervisors.lock().expect("supervisors lock");
        for (id, workload, shared, stopped) in started {
            let runtime = self.clone();
            supervisors.spawn(async move { runtime.supervise(id, workload, shared, stopped).await });
        }
        drop(supervisors);
        self.notify();
    }

    /// Stops every instance of `key` and forgets it.
    pub fn remove(&self, key: &RevisionKey) {
        if let Some(entry) = self.lock().remove(key) {
            for instance in entry.instances {
                instance.stop.send_replace(true);
            }
        }
        self.notify();
    }

    /// Every revision the runtime knows.
    pub fn revisions(&self) -> Vec<RevisionKey> {
        self.lock().keys().cloned().collect()
    }

    /// What `key` has now; the default (nothing) for an unknown revision.
    pub fn state(&self, key: &RevisionKey) -> RevisionState {
        let revisions = self.lock();
        let Some(entry) = revisions.get(key) else {
            return RevisionState::default();
        };
        let mut state = RevisionState {
            desired: entry.desired,
            failure: entry.failure.clone(),
            restarts: entry.restarts,
            last_start_time: entry.last_start_time,
            ..Default::default()
        };
        for instance in &entry.instances {
            let shared = instance.shared.lock().expect("instance lock");
            match shared.state {
                InstanceState::Stopping => {}
                InstanceState::Ready => {
                    state.actual += 1;
                    state.ready.push(SocketAddr::from((Ipv4Addr::LOCALHOST, shared.port)));
                }
                InstanceState::Starting | InstanceState::CrashBackoff => state.actual += 1,
            }
        }
        state
    }

    /// Stops every instance of every revision and waits for them to exit.
    pub async fn shutdown(&self) {
        for entry in self.lock().values() {
            for instance in &entry.instances {
                instance.stop.send_replace(true);
            }
        }
        let mut supervisors = std::mem::take(&mut *self.supervisors.lock().expect("supervisors lock"));
        while supervisors.join_next().await.is_some() {}
    }

    fn set_state(&self, shared: &Mutex<InstanceShared>, state: InstanceState) {
        {
            let mut s = shared.lock().expect("instance lock");
            if s.state == InstanceState::Stopping {
                return;
            }
            s.state = state;
        }
        self.notify();
    }

    fn record(&self, key: &RevisionKey, f: impl FnOnce(&mut RevisionEntry)) {
        if let Some(entry) = self.lock().get_mut(key) {
            f(entry);
        }
        self.notify();
    }

    /// Reports `failure` for the revision of `key`, marks the instance as waiting to restart,
    /// and waits out `backoff` (doubled for next time); true when it was stopped meanwhile.
    async fn fail_and_back_off(
        &self,
        key: &RevisionKey,
        shared: &Mutex<InstanceShared>,
        failure: Failure,
        stopped: &mut watch::Receiver<bool>,
        backoff: &mut Duration,
    ) -> bool {
        self.record(key, |entry| {
            entry.failure = Some(failure);
            entry.restarts += 1;
        });
        self.set_state(shared, InstanceState::CrashBackoff);
        if wait_or_stop(stopped, *backoff).await {
            return true;
        }
        *backoff = (*backoff * 2).min(self.options.max_restart_backoff);
        false
    }

    /// The life of one instance: start, probe, wait; restart after crashes; stop on request.
    async fn supervise(
        self: Arc<Self>,
        id: u32,
        workload: Arc<Workload>,
        shared: Arc<Mutex<InstanceShared>>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let key = &workload.key;
        let log_path = self.options.logs_dir.join(&key.namespace).join(&key.name).join(format!("{id}.log"));
        let mut backoff = self.options.restart_backoff;
        loop {
            if *stopped.borrow() {
                break;
            }
            let port = match free_port() {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(revision = %key, error = %e, "no free port for an instance");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            shared.lock().expect("instance lock").port = port;
            self.set_state(&shared, InstanceState::Starting);
            let tail = Arc::new(Mutex::new(VecDeque::new()));
            let started = Instant::now();
            let mut child = match start(&workload, port, &log_path, tail.clone()).await {
                Ok(child) => child,
                Err(e) => {
                    tracing::warn!(revision = %key, instance = id, error = %e, "cannot start an instance");
                    let failure = Failure {
                        reason: "ExecFailed".into(),
                        message: format!("cannot start {:?}: {e}", workload.argv.first().map(String::as_str).unwrap_or("")),
                    };
                    if self.fail_and_back_off(key, &shared, failure, &mut stopped, &mut backoff).await {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(revision = %key, instance = id, port, pid = child.id(), "instance started");
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            // Probe until ready, or until it exits, is stopped or runs out of startup time.
            let mut ready_at = None;
            let startup_deadline = tokio::time::Instant::now() + self.options.startup_timeout;
            let exit = loop {
                tokio::select! {
                    status = child.wait() => break Exit::Exited(status),
                    _ = stopped.changed() => break Exit::Stop,
                    _ = tokio::time::sleep_until(startup_deadline), if ready_at.is_none() => break Exit::NeverReady,
                    passed = probe_once(addr, &workload.readiness), if ready_at.is_none() => {
                        if passed {
                            ready_at = Some(Instant::now());
                            let took = started.elapsed();
                            tracing::info!(revision = %key, instance = id, port, ready_after_ms = took.as_millis() as u64, "instance ready");
                            let mut rolling = None;
                            self.record(key, |entry| {
                                entry.failure = None;
                                entry.last_start_time = Some(took);
                                if entry.instances.iter().any(|i| !Arc::ptr_eq(&i.workload, &entry.workload)) {
                                    rolling = Some(entry.desired);
                                }
                            });
                            self.set_state(&shared, InstanceState::Ready);
                            if let Some(desired) = rolling {
                                // One more new instance is ready: an older one can go.
                                self.scale(key, desired);
                            }
                        } else {
                            tokio::time::sleep(self.options.probe_interval).await;
                        }
                    }
                }
            };
            let exit = match exit {
                Exit::Stop => None,
                Exit::Exited(status) => Some(status),
                Exit::NeverReady => {
                    let what = match &workload.readiness {
                        crate::workload::Readiness::Http { path, .. } => format!("GET {path} on port {port}"),
                        crate::workload::Readiness::Tcp => format!("a connection to port {port} ($PORT)"),
                        crate::workload::Readiness::Started => "the process staying up".to_string(),
                    };
                    let message = format!(
                        "the container did not pass its readiness probe ({what}) within {:?}",
                        self.options.startup_timeout
                    );
                    tracing::warn!(revision = %key, instance = id, %message, "instance never became ready; restarting after backoff");
                    stop(&mut child, Duration::from_secs(1)).await;
                    let failure = Failure {
                        reason: "ReadinessProbeFailed".into(),
                        message,
                    };
                    if self.fail_and_back_off(key, &shared, failure, &mut stopped, &mut backoff).await {
                        break;
                    }
                    continue;
                }
            };
            match exit {
                None => {
                    stop(&mut child, workload.grace_period.min(self.options.max_grace_period)).await;
                    tracing::info!(revision = %key, instance = id, "instance stopped");
                    break;
                }
                Some(status) => {
                    // Let the log pumps write the last lines.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let (reason, what) = match status {
                        Ok(s) => match s.code() {
                            Some(code) => (format!("ExitCode{code}"), format!("exited with code {code}")),
                            None => ("Signaled".to_string(), format!("was stopped by a signal ({s})")),
                        },
                        Err(e) => ("WaitFailed".to_string(), format!("could not be waited for: {e}")),
                    };
                    let last: Vec<String> = tail.lock().expect("tail lock").iter().cloned().collect();
                    let message = if last.is_empty() {
                        format!("Container {what}")
                    } else {
                        format!("Container {what}: {}", last.join("\n"))
                    };
                    tracing::warn!(revision = %key, instance = id, %reason, %message, "instance exited; restarting after backoff");
                    // A process that served for a while starts again from the first backoff.
                    if ready_at.is_some_and(|at| at.elapsed() > Duration::from_secs(10)) {
                        backoff = self.options.restart_backoff;
                    }
                    if self
                        .fail_and_back_off(key, &shared, Failure { reason, message }, &mut stopped, &mut backoff)
                        .await
                    {
                        break;
                    }
                }
            }
        }
        // Gone: drop it from its revision.
        if let Some(entry) = self.lock().get_mut(key) {
            entry.instances.retain(|i| i.id != id);
        }
        self.notify();
    }
}

/// How the wait on a starting or running instance ended.
enum Exit {
    /// The process exited on its own.
    Exited(std::io::Result<std::process::ExitStatus>),
    /// A stop was asked for.
    Stop,
    /// It did not pass its readiness probe within the startup timeout.
    NeverReady,
}

/// Waits `delay` unless a stop comes first; true when stopped.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

/// A port free on loopback now (the instance binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// How many lines of output a crash report carries.
const TAIL_LINES: usize = 5;

/// Starts one process of `workload` on `port`, its output appended to `log_path` and its
/// last lines kept in `tail`.
async fn start(workload: &Workload, port: u16, log_path: &Path, tail: Arc<Mutex<VecDeque<String>>>) -> std::io::Result<Child> {
    let mut env: Vec<(String, String)> = workload.env.clone();
    env.push(("PORT".into(), port.to_string()));
    env.push(("K_SERVICE".into(), workload.service.clone()));
    env.push(("K_CONFIGURATION".into(), workload.configuration.clone()));
    env.push(("K_REVISION".into(), workload.key.name.clone()));
    let lookup = |name: &str| env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let argv: Vec<String> = workload.argv.iter().map(|a| expand(a, lookup)).collect();
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a stop reaches the workers it forks.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &workload.working_dir {
        command.current_dir(dir);
    }
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe. An instance must not outlive Sluice when Sluice is killed.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    if let Some(parent) = log_path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let log = tokio::fs::OpenOptions::new().create(true).append(true).open(log_path).await?;
    let log = Arc::new(tokio::sync::Mutex::new(log));
    let mut child = command.spawn()?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(BufReader::new(out), log.clone(), tail.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(BufReader::new(err), log, tail));
    }
    Ok(child)
}

/// Copies lines of output into the log file and the tail.
async fn pump<R: tokio::io::AsyncBufRead + Unpin>(
    reader: R,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        {
            let mut tail = tail.lock().expect("tail lock");
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
        }
        let mut file = log.lock().await;
        let _ = file.write_all(format!("{line}\n").as_bytes()).await;
    }
    let _ = log.lock().await.flush().await;
}

/// SIGTERM to the process group, then SIGKILL after `grace` (RT-04).
async fn stop(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads; it
        // takes no pointers.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Readiness;

    fn workload(name: &str, script: &str, grace: Duration) -> Workload {
        Workload {
            key: RevisionKey {
                namespace: "default".into(),
                name: name.into(),
            },
            service: "svc".into(),
            configuration: "svc".into(),
            argv: vec!["python3".into(), "-c".into(), script.into(), "$(GREETING)-$(PORT)".into()],
            env: vec![("GREETING".into(), "hi".into())],
            working_dir: None,
            image: "example/app".into(),
            readiness: Readiness::Tcp,
            grace_period: grace,
        }
    }

    const SERVER: &str = r#"
import os, signal, socket, sys, time
print("argv", sys.argv[1], os.environ["K_SERVICE"], os.environ["K_REVISION"], flush=True)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen()
signal.signal(signal.SIGTERM, lambda *_: (print("terminating", flush=True), sys.exit(0)))
while True: time.sleep(0.05)
"#;

    fn options(dir: &Path) -> RuntimeOptions {
        RuntimeOptions {
            restart_backoff: Duration::from_millis(50),
            max_restart_backoff: Duration::from_millis(200),
            ..RuntimeOptions::new(dir)
        }
    }

    async fn until(runtime: &ProcessRuntime, what: impl Fn(&ProcessRuntime) -> bool) {
        let mut changes = runtime.changes();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !what(runtime) {
            assert!(Instant::now() < deadline, "timed out");
            let _ = tokio::time::timeout(Duration::from_millis(100), changes.changed()).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scales_up_and_down_with_env_logs_and_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = ProcessRuntime::new(options(dir.path()));
        let w = workload("svc-00001", SERVER, Duration::from_secs(5));
        let key = w.key.clone();
        runtime.set_workload(w);
        runtime.scale(&key, 2);
        until(&runtime, |r| r.state(&key).ready.len() == 2).await;
        let state = runtime.state(&key);
        assert_eq!((state.desired, state.actual), (2, 2));
        assert!(state.last_start_time.is_some());
        assert_ne!(state.ready[0], state.ready[1]);
        runtime.scale(&key, 0);
        until(&runtime, |r| r.state(&key).actual == 0).await;
        // Both exited on SIGTERM after writing what they were started with.
        let mut changes = runtime.changes();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs: Vec<String> = (1..=2)
                .map(|i| std::fs::read_to_string(dir.path().join(format!("default/svc-00001/{i}.log"))).unwrap_or_default())
                .collect();
            if logs.iter().all(|l| l.contains("terminating")) {
                for log in &logs {
                    assert!(log.contains("argv hi-"), "{log}");
                    assert!(log.contains("svc svc-00001"), "{log}");
                }
                break;
            }
            assert!(Instant::now() < deadline, "{logs:?}");
            let _ = tokio::time::timeout(Duration::from_millis(50), changes.changed()).await;
        }
        runtime.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_changed_env_replaces_the_instances_one_ready_instance_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = ProcessRuntime::new(options(dir.path()));
        let w = workload("roll-00001", SERVER, Duration::from_secs(5));
        let key = w.key.clone();
        runtime.set_workload(w.clone());
        runtime.scale(&key, 2);
        until(&runtime, |r| r.state(&key).ready.len() == 2).await;
        let before = runtime.state(&key).ready;
        // The same workload again changes nothing.
        runtime.set_workload(w.clone());
        assert_eq!(runtime.state(&key).ready, before);
        let mut changed = w;
        changed.env = vec![("GREETING".into(), "hello".into())];
        let ready_counts = std::cell::RefCell::new(Vec::new());
        runtime.set_workload(changed);
        until(&runtime, |r| {
            let state = r.state(&key);
            ready_counts.borrow_mut().push(state.ready.len());
            state.ready.len() == 2 && state.ready.iter().all(|a| !before.contains(a))
        })
        .await;
        // Two ready instances throughout: the old ones went as the new ones became ready.
        let ready_counts = ready_counts.into_inner();
        assert!(ready_counts.iter().all(|&n| n >= 2), "{ready_counts:?}");
        until(&runtime, |r| r.state(&key).actual == 2).await;
        // An instance can be ready before its output reaches the log file, so the logs are
        // awaited rather than read once.
        let log = |i: u32| std::fs::read_to_string(dir.path().join(format!("default/roll-00001/{i}.log"))).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = [log(1), log(2), log(3), log(4)];
            let started = |l: &String, greeting: &str| l.contains(&format!("argv {greeting}-"));
            if started(&logs[0], "hi") && started(&logs[1], "hi") && started(&logs[2], "hello") && started(&logs[3], "hello") {
                break;
            }
            assert!(Instant::now() < deadline, "{logs:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        runtime.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crashing_process_is_reported_and_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = ProcessRuntime::new(options(dir.path()));
        let script = "import sys; print('cannot open the database', file=sys.stderr); sys.exit(3)";
        let w = workload("crash-00001", script, Duration::from_secs(1));
        let key = w.key.clone();
        runtime.set_workload(w);
        runtime.scale(&key, 1);
        until(&runtime, |r| r.state(&key).restarts >= 2).await;
        let state = runtime.state(&key);
        let failure = state.failure.expect("a failure is reported");
        assert_eq!(failure.reason, "ExitCode3");
        assert!(failure.message.contains("cannot open the database"), "{}", failure.message);
        assert!(state.ready.is_empty());
        runtime.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_that_never_opens_its_port_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = ProcessRuntime::new(RuntimeOptions {
            startup_timeout: Duration::from_millis(300),
            ..options(dir.path())
        });
        let w = workload("mute-00001", "import time; time.sleep(30)", Duration::from_secs(1));
        let key = w.key.clone();
        runtime.set_workload(w);
        runtime.scale(&key, 1);
        until(&runtime, |r| r.state(&key).failure.is_some()).await;
        let failure = runtime.state(&key).failure.unwrap();
        assert_eq!(failure.reason, "ReadinessProbeFailed");
        assert!(failure.message.contains("readiness probe"), "{}", failure.message);
        runtime.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = ProcessRuntime::new(options(dir.path()));
        let stubborn = SERVER.replace("sys.exit(0)", "None");
        let w = workload("stubborn-00001", &stubborn, Duration::from_millis(300));
        let key = w.key.clone();
        runtime.set_workload(w);
        runtime.scale(&key, 1);
        until(&runtime, |r| r.state(&key).ready.len() == 1).await;
        let addr = runtime.state(&key).ready[0];
        let stopping = Instant::now();
        runtime.remove(&key);
        runtime.shutdown().await;
        let took = stopping.elapsed();
        assert!(took >= Duration::from_millis(300), "stopped in {took:?}, before the grace period");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still listening after SIGKILL");
    }
}
