//! End-to-end: every folder under `examples/` runs as its README tells users to run it, and
//! exactly what the README says arrives where.
//!
//! The README is the test's input: its `python3` lines say which port answers how, its `sluice
//! send` lines are the events, and the `# → URL: ID [×N] [name=value]…` lines under each send say
//! what arrives where. Each example runs twice: once with recording subscribers that answer as
//! the scripts do (so headers can be checked), once with the real Python scripts (so they
//! cannot rot either). Subscriber URLs are rewritten to free ports in both runs.
//!
//! "Nothing else arrives" is shown with sentinels rather than sleeps: every send is repeated with
//! the id suffixed `-sentinel` once the first round is out, and triggers and subscriptions run
//! with one delivery in flight (channels answer only after fan-out), so by the time the
//! sentinels have arrived, anything the first round would wrongly have delivered has too.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use common::{Received, Recorder, Sluice};
use serde_json::Value;

/// Every eventing example folder (run from its README's lines); a folder that is not listed
/// here or in [`SERVING_FOLDERS`] fails `every_example_folder_is_tested`.
const FOLDERS: &[&str] = &["channel", "dead-letter", "filters", "parallel", "quickstart", "sequence"];
/// Examples of Knative Services, each with its own test below.
const SERVING_FOLDERS: &[&str] = &["helloworld-python", "kafka-scale-to-zero"];

/// Where the examples send to; rewritten to the test's gateway.
const EXAMPLE_GATEWAY: &str = "http://127.0.0.1:8080";
/// Prefix of the subscriber URLs in the examples.
const LOOPBACK: &str = "http://127.0.0.1:";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_example_folder_is_tested() {
    let mut found: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    found.sort();
    let mut tested: Vec<&str> = FOLDERS.iter().chain(SERVING_FOLDERS).copied().collect();
    tested.sort();
    assert_eq!(
        found, tested,
        "examples/ and the folders this test runs differ: add a test for the new folder"
    );
    let index = std::fs::read_to_string(repo().join("examples/README.md")).unwrap();
    for f in &tested {
        assert!(index.contains(&format!("[{f}]({f}/)")), "examples/README.md does not list {f}");
    }
    for f in FOLDERS {
        parse_example(f);
    }
}

macro_rules! example_tests {
    ($($name:ident, $scripts:ident => $folder:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_example($folder, Mode::Recorders).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scripts() {
            run_example($folder, Mode::Scripts).await;
        }
    )*};
}

example_tests! {
    channel, channel_with_its_scripts => "channel";
    dead_letter, dead_letter_with_its_scripts => "dead-letter";
    filters, filters_with_its_scripts => "filters";
    parallel, parallel_with_its_scripts => "parallel";
    quickstart, quickstart_with_its_scripts => "quickstart";
    sequence, sequence_with_its_scripts => "sequence";
}

// ---------------------------------------------------------------------------------------------
// What an example's README says.

/// One example: its manifests and what its README says to run, send and expect.
struct Example {
    /// The YAML documents of every manifest in the folder.
    documents: Vec<Value>,
    processes: Vec<Process>,
    sends: Vec<Send>,
}

/// A `python3 examples/...` line: a subscriber script on a port.
#[derive(Clone, Debug)]
struct Process {
    /// The script, relative to the repository.
    script: String,
    /// The port it listens on in the example.
    port: u16,
    /// Its flags other than `--port`.
    flags: Vec<String>,
}

/// How a script answers, for the recorders that stand in for it.
#[derive(Clone, Debug)]
enum Answer {
    /// 202, no body (display.py, dead_letters.py).
    Accept,
    /// The event back with `.NAME` added to its id (display.py --reply NAME).
    Reply(String),
    /// The event back unchanged when its type is TYPE, else 202 (display.py --filter TYPE).
    Filter(String),
    /// 503 with this body (fail.py).
    Fail(&'static str),
}

/// The body fail.py answers with.
const FAIL_BODY: &str = "inventory database unavailable";

impl Process {
    fn answer(&self) -> Answer {
        match (
            self.script.as_str(),
            self.flags.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
        ) {
            ("examples/quickstart/display.py", []) => Answer::Accept,
            ("examples/quickstart/display.py", ["--reply", name]) => Answer::Reply(name.to_string()),
            ("examples/quickstart/display.py", ["--filter", ty]) => Answer::Filter(ty.to_string()),
            ("examples/dead-letter/fail.py", []) => Answer::Fail(FAIL_BODY),
            ("examples/dead-letter/dead_letters.py", []) => Answer::Accept,
            (script, flags) => panic!("the test does not know how {script} {flags:?} answers: teach Process::answer"),
        }
    }

    /// The text before and after the event id in a line the script prints for an event.
    fn id_markers(&self) -> (&'static str, &'static str) {
        match self.script.as_str() {
            "examples/quickstart/display.py" => ("'id': '", "'"),
            "examples/dead-letter/fail.py" => ("refused ", " "),
            "examples/dead-letter/dead_letters.py" => ("dead letter ", " "),
            other => panic!("the test does not know what {other} prints"),
        }
    }
}

/// A `sluice send` line and the arrivals listed under it.
#[derive(Debug)]
struct Send {
    /// The arguments after `sluice`.
    args: Vec<String>,
    /// Its `--id`.
    id: String,
    expect: Vec<Expected>,
}

/// One `# → URL: ID [×N] [name=value]…` line.
#[derive(Clone, Debug)]
struct Expected {
    url: String,
    id: String,
    times: usize,
    attributes: Vec<(String, String)>,
}

fn parse_example(folder: &str) -> Example {
    let dir = repo().join("examples").join(folder);
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_else(|e| panic!("examples/{folder}/README.md: {e}"));
    let mut ran = false;
    let (mut processes, mut sends) = (Vec::new(), Vec::<Send>::new());
    for line in readme.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("sluice run -f ") {
            let path = rest.split_whitespace().next().unwrap();
            assert_eq!(
                path,
                format!("examples/{folder}/"),
                "examples/{folder}/README.md runs another folder"
            );
            ran = true;
        } else if line.starts_with("python3 ") {
            processes.push(parse_process(folder, line));
        } else if let Some(rest) = line.strip_prefix("sluice send ") {
            let args: Vec<String> = ["send".to_string()].into_iter().chain(shell_words(rest)).collect();
            let id = args.windows(2).find(|w| w[0] == "--id").map(|w| w[1].clone());
            let id = id.unwrap_or_else(|| panic!("examples/{folder}/README.md: give every send an --id: {line}"));
            sends.push(Send { args, id, expect: vec![] });
        } else if let Some(rest) = line.strip_prefix("# → ") {
            let send = sends
                .last_mut()
                .unwrap_or_else(|| panic!("examples/{folder}/README.md: {line:?} follows no send"));
            send.expect.push(parse_expected(folder, &send.id, rest));
        }
    }
    assert!(ran, "examples/{folder}/README.md has no `sluice run -f examples/{folder}/` line");
    assert!(!sends.is_empty(), "examples/{folder}/README.md sends no events");
    let mut ids: Vec<&str> = sends.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), sends.len(), "examples/{folder}/README.md: give every send its own --id");
    assert!(
        sends.iter().any(|s| !s.expect.is_empty()),
        "examples/{folder}/README.md expects nothing to arrive"
    );
    let mut documents = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files.iter().filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")) {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if !v.is_null() {
                documents.push(v);
            }
        }
    }
    assert!(!documents.is_empty(), "examples/{folder} has no manifests");
    let example = Example {
        documents,
        processes,
        sends,
    };
    for url in example.subscriber_urls().keys() {
        let port = port_of(url);
        assert!(
            port != 8080 && port != 8090,
            "examples/{folder}: {url} is Sluice's own port; use a ref"
        );
        assert!(
            example.process_on(port).is_some(),
            "examples/{folder}/README.md starts nothing on port {port} ({url})"
        );
    }
    for s in &example.sends {
        for e in &s.expect {
            assert!(
                example.subscriber_urls().contains_key(&e.url),
                "examples/{folder}/README.md expects {} which no manifest names",
                e.url
            );
        }
    }
    for p in &example.processes {
        p.answer();
    }
    example
}

fn parse_process(folder: &str, line: &str) -> Process {
    let command = line.split(" #").next().unwrap().trim().trim_end_matches('&');
    let words: Vec<&str> = command.split_whitespace().collect();
    let script = words[1].to_string();
    assert!(
        repo().join(&script).is_file(),
        "examples/{folder}/README.md runs {script}, which does not exist"
    );
    let (mut port, mut flags) = (None, Vec::new());
    let mut rest = words[2..].iter();
    while let Some(w) = rest.next() {
        if *w == "--port" {
            port = Some(rest.next().unwrap().parse().unwrap());
        } else {
            flags.push(w.to_string());
        }
    }
    let default_port = match script.as_str() {
        "examples/quickstart/display.py" => 9099,
        "examples/dead-letter/fail.py" => 9101,
        "examples/dead-letter/dead_letters.py" => 9102,
        other => panic!("the test does not know the default port of {other}"),
    };
    Process {
        script,
        port: port.unwrap_or(default_port),
        flags,
    }
}

fn parse_expected(folder: &str, send_id: &str, text: &str) -> Expected {
    let (url, rest) = text
        .split_once(": ")
        .unwrap_or_else(|| panic!("examples/{folder}: expected `URL: ID`, got {text:?}"));
    let mut words = rest.split_whitespace();
    let id = words.next().unwrap().to_string();
    assert!(
        id.starts_with(send_id),
        "examples/{folder}: {id} should start with the id sent, {send_id}"
    );
    let (mut times, mut attributes) = (1, Vec::new());
    for w in words {
        if let Some(n) = w.strip_prefix('×') {
            times = n.parse().unwrap();
        } else {
            let (k, v) = w.split_once('=').unwrap_or_else(|| panic!("examples/{folder}: {w:?} in {text:?}"));
            attributes.push((k.to_string(), v.to_string()));
        }
    }
    Expected {
        url: url.to_string(),
        id,
        times,
        attributes,
    }
}

/// Splits a shell command line into words: whitespace, single and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn port_of(url: &str) -> u16 {
    let rest = url.strip_prefix(LOOPBACK).unwrap();
    rest[..rest.find('/').unwrap_or(rest.len())].parse().unwrap()
}

fn path_of(url: &str) -> &str {
    let rest = url.strip_prefix(LOOPBACK).unwrap();
    rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
}

impl Example {
    /// Every loopback URL in the manifests, and whether Sluice asks it for a reply (a
    /// subscriber, step or filter: yes; a reply destination or dead-letter sink: no).
    fn subscriber_urls(&self) -> BTreeMap<String, bool> {
        fn walk(v: &Value, path: &mut Vec<String>, out: &mut BTreeMap<String, bool>) {
            match v {
                Value::String(s) if s.starts_with(LOOPBACK) => {
                    let asked = !path.iter().any(|k| k == "reply" || k == "deadLetterSink");
                    let before = out.insert(s.clone(), asked);
                    assert!(
                        before.is_none_or(|b| b == asked),
                        "{s} is both a subscriber and a reply or dead-letter destination"
                    );
                }
                Value::Object(m) => {
                    for (k, v) in m {
                        path.push(k.clone());
                        walk(v, path, out);
                        path.pop();
                    }
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, path, out)),
                _ => {}
            }
        }
        let mut out = BTreeMap::new();
        self.documents.iter().for_each(|d| walk(d, &mut vec![], &mut out));
        out
    }

    fn process_on(&self, port: u16) -> Option<&Process> {
        self.processes.iter().find(|p| p.port == port)
    }

    /// The manifests with every loopback URL replaced by `rewrite`'s and one delivery in flight
    /// per trigger and subscription, as JSON documents (which are YAML).
    fn manifests(&self, rewrite: &BTreeMap<String, String>) -> String {
        fn replace(v: &mut Value, rewrite: &BTreeMap<String, String>) {
            match v {
                Value::String(s) => {
                    if let Some(new) = rewrite.get(s.as_str()) {
                        *s = new.clone();
                    }
                }
                Value::Object(m) => m.values_mut().for_each(|v| replace(v, rewrite)),
                Value::Array(a) => a.iter_mut().for_each(|v| replace(v, rewrite)),
                _ => {}
            }
        }
        let docs: Vec<String> = self
            .documents
            .iter()
            .map(|d| {
                let mut d = d.clone();
                replace(&mut d, rewrite);
                if d["kind"] == "Trigger" || d["kind"] == "Subscription" {
                    d["metadata"]["annotations"]["sluice.dev/max-in-flight"] = "1".into();
                }
                serde_json::to_string_pretty(&d).unwrap()
            })
            .collect();
        docs.join("\n---\n")
    }

    /// The API paths of the example's objects.
    fn object_paths(&self) -> Vec<String> {
        self.documents
            .iter()
            .map(|d| {
                let kind = d["kind"].as_str().unwrap().to_lowercase();
                let ns = d["metadata"]["namespace"].as_str().unwrap_or("default");
                format!(
                    "/apis/{}/namespaces/{ns}/{kind}s/{}",
                    d["apiVersion"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Running an example.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Recorders answering as the scripts do.
    Recorders,
    /// The example's own Python scripts.
    Scripts,
}

/// One event as it arrived, at the example's URL.
#[derive(Debug, Clone)]
struct Arrival {
    id: String,
    /// What the recorder received (recorder mode).
    request: Option<Received>,
    /// What the script printed (script mode).
    line: Option<String>,
}

/// What stands in for the subscribers of one example run.
enum Subscribers {
    Recorders(BTreeMap<String, Recorder>),
    Scripts(Vec<(Process, Script)>),
}

impl Subscribers {
    /// Everything that arrived so far, by the example's URL.
    fn arrivals(&self, urls: &BTreeMap<String, bool>) -> BTreeMap<String, Vec<Arrival>> {
        let mut out: BTreeMap<String, Vec<Arrival>> = urls.keys().map(|u| (u.clone(), vec![])).collect();
        match self {
            Subscribers::Recorders(recorders) => {
                for (url, rec) in recorders {
                    for r in rec.received() {
                        let id = attribute(&r, "id").unwrap_or_else(|| panic!("{url} received a request without an event id: {r:?}"));
                        out.get_mut(url).unwrap().push(Arrival {
                            id,
                            request: Some(r),
                            line: None,
                        });
                    }
                }
            }
            Subscribers::Scripts(scripts) => {
                for (process, script) in scripts {
                    let (before, after) = process.id_markers();
                    for line in script.lines.lock().unwrap().iter() {
                        let (path, text) = line
                            .split_once(": ")
                            .unwrap_or_else(|| panic!("{} printed {line:?}", process.script));
                        let start = text.find(before).unwrap_or_else(|| panic!("no id in {line:?}")) + before.len();
                        let id = text[start..].split(after).next().unwrap().to_string();
                        let url = format!("{LOOPBACK}{}{path}", process.port);
                        let list = out
                            .get_mut(&url)
                            .unwrap_or_else(|| panic!("{} printed {line:?} for a URL no manifest names", process.script));
                        list.push(Arrival {
                            id,
                            request: None,
                            line: Some(line.clone()),
                        });
                    }
                }
            }
        }
        out
    }
}

/// A running example script and the lines it printed (after its `listening on` line).
struct Script {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Script {
    /// Starts `process` on a free port and waits for it to say where it listens.
    fn start(process: &Process) -> Script {
        let mut child = Command::new("python3")
            .arg(&process.script)
            .args(["--port", "0"])
            .args(&process.flags)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the example scripts");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{} printed {first:?} first", process.script))
            .to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Script { child, lines, url }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a recorder standing in for `answer` responds.
fn recorder_script(answer: Answer) -> common::Script {
    Arc::new(move |_, r: &Received| match &answer {
        Answer::Accept => StatusCode::ACCEPTED.into_response(),
        Answer::Reply(name) => echo(r, &format!("{}.{name}", r.header("ce-id").unwrap())),
        Answer::Filter(ty) if r.header("ce-type").as_deref() == Some(ty.as_str()) => echo(r, &r.header("ce-id").unwrap()),
        Answer::Filter(_) => StatusCode::ACCEPTED.into_response(),
        Answer::Fail(body) => (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "text/plain")], *body).into_response(),
    })
}

/// The received binary-mode event back as a reply, with this id.
fn echo(r: &Received, id: &str) -> Response {
    let mut resp = Response::new(Body::from(r.body.clone()));
    for (name, value) in &r.headers {
        if name.as_str().starts_with("ce-") || name == "content-type" {
            resp.headers_mut().append(name.clone(), value.clone());
        }
    }
    resp.headers_mut().insert("ce-id", HeaderValue::from_str(id).unwrap());
    resp
}

/// An attribute of a received event, binary or structured.
fn attribute(r: &Received, name: &str) -> Option<String> {
    if r.header("content-type")
        .is_some_and(|c| c.starts_with("application/cloudevents+json"))
    {
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        return match &v[name] {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
    }
    r.header(&format!("ce-{name}"))
}

async fn run_example(folder: &str, mode: Mode) {
    let example = parse_example(folder);
    let urls = example.subscriber_urls();
    let mut rewrite = BTreeMap::new();
    let subscribers = match mode {
        Mode::Recorders => {
            let mut recorders = BTreeMap::new();
            for url in urls.keys() {
                let answer = example.process_on(port_of(url)).unwrap().answer();
                let rec = Recorder::scripted(recorder_script(answer)).await;
                rewrite.insert(url.clone(), format!("{}{}", rec.url.trim_end_matches('/'), path_of(url)));
                recorders.insert(url.clone(), rec);
            }
            Subscribers::Recorders(recorders)
        }
        Mode::Scripts => {
            let scripts: Vec<(Process, Script)> = example.processes.iter().map(|p| (p.clone(), Script::start(p))).collect();
            for url in urls.keys() {
                let (_, script) = scripts.iter().find(|(p, _)| p.port == port_of(url)).unwrap();
                rewrite.insert(url.clone(), format!("{}{}", script.url, path_of(url)));
            }
            Subscribers::Scripts(scripts)
        }
    };
    let sluice = Sluice::start(&example.manifests(&rewrite)).await;
    for path in example.object_paths() {
        sluice.wait_ready(&path).await;
    }

    // Round one as the README has it, then the same events again as sentinels.
    let mut expected: BTreeMap<String, Vec<Expected>> = urls.keys().map(|u| (u.clone(), vec![])).collect();
    // Which send (and round) each expected event id comes from: they share one trace.
    let (mut trace_group, mut send_no) = (BTreeMap::<String, usize>::new(), 0);
    for sentinel in [false, true] {
        for send in &example.sends {
            send_no += 1;
            let new_id = |id: &str| {
                if sentinel {
                    id.replacen(&send.id, &format!("{}-sentinel", send.id), 1)
                } else {
                    id.to_string()
                }
            };
            let args: Vec<String> = send
                .args
                .iter()
                .map(|a| {
                    if a == &send.id {
                        new_id(a)
                    } else {
                        a.replace(EXAMPLE_GATEWAY, &sluice.gateway)
                    }
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = tokio::task::block_in_place(|| sluice.cli(&args));
            assert!(
                out.status.success(),
                "examples/{folder}: sluice {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            for e in &send.expect {
                let attributes = e
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), rewrite.get(v).cloned().unwrap_or(v.clone())))
                    .collect();
                let e = Expected {
                    id: new_id(&e.id),
                    attributes,
                    ..e.clone()
                };
                expected.get_mut(&e.url).unwrap().extend(std::iter::repeat_n(e.clone(), e.times));
                trace_group.insert(e.id.clone(), send_no);
            }
        }
    }

    // Wait for everything expected, then compare exactly.
    let deadline = Instant::now() + Duration::from_secs(30);
    let arrived = loop {
        let arrived = subscribers.arrivals(&urls);
        if expected.iter().all(|(url, e)| arrived[url].len() >= e.len()) || Instant::now() > deadline {
            break arrived;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ids = |v: &mut dyn Iterator<Item = String>| {
        let mut v: Vec<String> = v.collect();
        v.sort();
        v
    };
    let got: BTreeMap<&String, Vec<String>> = arrived.iter().map(|(u, a)| (u, ids(&mut a.iter().map(|a| a.id.clone())))).collect();
    let want: BTreeMap<&String, Vec<String>> = expected
        .iter()
        .map(|(u, e)| (u, ids(&mut e.iter().map(|e| e.id.clone()))))
        .collect();
    assert_eq!(
        got,
        want,
        "examples/{folder} ({mode:?}): what arrived where (left) is not what the README says (right); sluice log:\n{}",
        sluice.log()
    );

    let mut traces: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for (url, arrivals) in &arrived {
        for a in arrivals {
            let wanted = expected[url].iter().find(|e| e.id == a.id).unwrap();
            if let Some(r) = &a.request {
                check_request(folder, url, urls[url], wanted, r);
                // One send, one trace: replies and dead letters stay in the trace of the event.
                let trace = r.header("traceparent").unwrap()[3..35].to_string();
                let (first, first_id) = traces.entry(trace_group[&a.id]).or_insert((trace.clone(), a.id.clone()));
                assert_eq!(
                    &trace, first,
                    "examples/{folder}: {} at {url} is in another trace than {first_id}",
                    a.id
                );
            }
            if let Some(line) = &a.line {
                // The scripts print the attributes; dead_letters.py decodes knativeerrordata.
                for (name, value) in &wanted.attributes {
                    let shown = match name.as_str() {
                        "knativeerrordata" => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(value).unwrap()).unwrap(),
                        _ => value.clone(),
                    };
                    assert!(
                        line.contains(&shown),
                        "examples/{folder}: {line:?} at {url} does not show {name}={value}"
                    );
                }
            }
        }
    }
}

/// What every request to a subscriber carries (docs/subscribers.md), and the attributes the
/// README names.
fn check_request(folder: &str, url: &str, asked_for_reply: bool, wanted: &Expected, r: &Received) {
    let at = format!("examples/{folder}: {} at {url}", wanted.id);
    assert_eq!(r.header("ce-specversion").as_deref(), Some("1.0"), "{at}: binary mode");
    assert_eq!(r.header("kn-namespace").as_deref(), Some("default"), "{at}: Kn-Namespace");
    let tp = r.header("traceparent").unwrap_or_else(|| panic!("{at}: no traceparent"));
    assert!(tp.len() == 55 && tp.starts_with("00-"), "{at}: traceparent {tp}");
    assert_eq!(r.header("prefer").as_deref(), asked_for_reply.then_some("reply"), "{at}: Prefer");
    for (name, value) in &wanted.attributes {
        assert_eq!(attribute(r, name).as_deref(), Some(value.as_str()), "{at}: attribute {name}");
    }
}

/// `examples/helloworld-python`: Knative's Flask sample under gunicorn, as its `service.yaml`
/// says, with gunicorn from the test venv (`SLUICE_PYTHON`'s) and the example folder as the
/// working directory; it answers by Host through the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helloworld_python_answers_through_the_gateway() {
    let Some(python) = std::env::var_os("SLUICE_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs SLUICE_PYTHON (the venv of scripts/test, with Flask and gunicorn)"
        );
        eprintln!("skipped: SLUICE_PYTHON is not set (scripts/test sets it)");
        return;
    };
    let gunicorn = PathBuf::from(python).with_file_name("gunicorn");
    assert!(gunicorn.exists(), "{} is missing: scripts/test installs it", gunicorn.display());
    let dir = repo().join("examples/helloworld-python");
    let manifest = std::fs::read_to_string(dir.join("service.yaml")).unwrap();
    let manifest = manifest.replace(
        r#"command: ["gunicorn","#,
        &format!(
            "workingDir: {:?}\n          command: [{:?},",
            dir.display().to_string(),
            gunicorn.display().to_string()
        ),
    );
    assert!(manifest.contains("workingDir"), "service.yaml's command changed: {manifest}");
    let sluice = Sluice::start(&manifest).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    let svc = sluice
        .wait_ready("/apis/serving.knative.dev/v1/namespaces/default/services/helloworld-python")
        .await;
    let host = format!("helloworld-python.default.localhost:{port}");
    assert_eq!(svc["status"]["url"], format!("http://{host}"));
    let response = reqwest::Client::new()
        .get(format!("{}/", sluice.gateway))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello Python Sample v1!\n");
}

/// `examples/kafka-scale-to-zero`: a KafkaSource delivering to a Service that starts at zero.
/// A record produced by kafka-python wakes it, arrives once on the first attempt, is committed,
/// and the Service returns to zero once idle. The example's broker address, topic and group are
/// swapped for the test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_scale_to_zero_wakes_the_consumer_and_returns_to_zero() {
    let kafka = common::kafka::Kafka::start().await;
    let topic = kafka.topic(1);
    let group = common::unique("order-consumer");
    let dir = repo().join("examples/kafka-scale-to-zero");
    let consumer = std::fs::read_to_string(dir.join("consumer.yaml")).unwrap();
    let consumer = consumer.replace(
        r#"command: ["python3", "consumer.py"]"#,
        &format!(
            "workingDir: {:?}\n          command: [\"python3\", \"consumer.py\"]",
            dir.display().to_string()
        ),
    );
    assert!(consumer.contains("workingDir"), "consumer.yaml's command changed: {consumer}");
    let source = std::fs::read_to_string(dir.join("source.yaml"))
        .unwrap()
        .replace("127.0.0.1:9092", &kafka.bootstrap)
        .replace("    - orders", &format!("    - {topic}"))
        .replace("consumerGroup: order-consumer", &format!("consumerGroup: {group}"));
    assert!(source.contains(&topic) && source.contains(&group), "source.yaml changed: {source}");
    let sluice = Sluice::start(&format!("{consumer}\n---\n{source}")).await;
    sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/kafkasources/orders")
        .await;
    let revision = "/apis/serving.knative.dev/v1/namespaces/default/revisions/order-consumer-00001";
    let at_zero = |r: &serde_json::Value| r["status"]["actualReplicas"] == 0 && r["status"]["desiredReplicas"] == 0;
    wait_revision(&sluice, revision, Duration::from_secs(20), at_zero).await;

    kafka.tool(&["produce", &topic, r#"[{"key": "customer-7", "value": "{\"item\": \"tea\"}"}]"#]);
    kafka.wait_committed(&group, &format!("{topic}/0"), 1).await;
    let logs_dir = sluice.dir.path().join("data");
    let read_logs = || {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["logs", "ksvc", "order-consumer", "--data-dir"])
            .arg(&logs_dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // The instance's output reaches its log file a moment after it answered.
    let line = "order partition:0/offset:0 customer-7 {\"item\": \"tea\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logs = read_logs();
    while !logs.contains(line) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        logs = read_logs();
    }
    assert_eq!(logs.matches(line).count(), 1, "{logs}");
    let metrics = sluice.metrics().await;
    let series = |name: &str| format!("{name}{{namespace=\"default\",kind=\"kafkasource\",name=\"orders\"}}");
    assert_eq!(
        common::metric(&metrics, &series("sluice_events_delivered_total")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        common::metric(&metrics, &series("sluice_delivery_retries_total")).unwrap_or(0.0),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        common::metric(
            &metrics,
            "sluice_revision_cold_start_seconds_count{namespace=\"default\",revision=\"order-consumer-00001\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    // Idle: back to zero after the 6 s window and the 2 s grace period.
    wait_revision(&sluice, revision, Duration::from_secs(40), at_zero).await;
}

/// Waits up to `limit` until `check` holds for the Revision at `path`.
async fn wait_revision(sluice: &Sluice, path: &str, limit: Duration, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let r = sluice.get_json(path).await;
        if r["kind"] != "Status" && check(&r) {
            return;
        }
        assert!(Instant::now() < deadline, "{path}: {r:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
