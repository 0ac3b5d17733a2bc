//! `sluice logs ksvc NAME [-f]`: the output of a Service's (or one Revision's) instances, as
//! the process runtime of `sluice run` keeps it: one file per instance under
//! `{data-dir}/logs/{namespace}/{revision}/{instance}.log`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `sluice logs`.
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// `ksvc` (a Service: every Revision of it) or `revision`.
    kind: String,
    /// Name of the Service or Revision.
    name: String,
    /// Namespace.
    #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
    namespace: String,
    /// Keep printing what the instances write.
    #[arg(short = 'f', long)]
    follow: bool,
    /// The `--data-dir` of the `sluice run` (without one it keeps logs in the system's
    /// temporary directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// The instance log files of what `args` names, by `revision/instance`.
fn files(dir: &Path, args: &LogsArgs, service: bool) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let Ok(revisions) = std::fs::read_dir(dir) else { return out };
    for revision in revisions.flatten() {
        let name = revision.file_name().to_string_lossy().to_string();
        let matches = if service {
            // Revision names are `{service}-00001`, ...
            name.strip_prefix(&format!("{}-", args.name))
                .is_some_and(|n| n.len() == 5 && n.chars().all(|c| c.is_ascii_digit()))
        } else {
            name == args.name
        };
        if !matches {
            continue;
        }
        for file in std::fs::read_dir(revision.path()).into_iter().flatten().flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "log") {
                let instance = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                out.insert(format!("{name}/{instance}"), path);
            }
        }
    }
    out
}

/// Prints the logs; follows them with `-f`.
pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let service = match args.kind.as_str() {
        "ksvc" | "service" | "services" | "kservice" => true,
        "revision" | "revisions" | "rev" => false,
        other => anyhow::bail!("sluice logs shows the instances of a ksvc or a revision, not {other:?}"),
    };
    let dir = super::serving::logs_dir(args.data_dir.as_deref()).join(&args.namespace);
    let mut offsets: BTreeMap<String, u64> = BTreeMap::new();
    let mut stdout = std::io::stdout();
    loop {
        let found = files(&dir, &args, service);
        if found.is_empty() && !args.follow {
            eprintln!(
                "no logs for {} {}/{} in {} (has an instance run yet?)",
                args.kind,
                args.namespace,
                args.name,
                dir.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        let prefix = found.len() > 1;
        for (instance, path) in &found {
            let offset = offsets.entry(instance.clone()).or_insert(0);
            let Ok(mut file) = std::fs::File::open(path) else { continue };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut text = String::new();
            let read = file.read_to_string(&mut text).unwrap_or(0);
            // Whole lines only; the rest comes on the next pass.
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            for line in text[..complete].lines() {
                if prefix {
                    writeln!(stdout, "[{instance}] {line}")?;
                } else {
                    writeln!(stdout, "{line}")?;
                }
            }
            *offset += complete.min(read) as u64;
        }
        stdout.flush()?;
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
