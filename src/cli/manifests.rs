//! Loading manifests from files and directories, shared by `run`, `apply` and `validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sluice_crds::manifest::{load_paths, DocumentOutcome};
use sluice_crds::KnativeObject;

/// Objects loaded from manifests, with every error and skipped document.
pub struct Loaded {
    /// Valid objects, in file and document order.
    pub objects: Vec<(String, KnativeObject)>,
    /// Every error, already naming file and document.
    pub errors: Vec<String>,
    /// Documents of kinds Sluice does not manage.
    pub skipped: Vec<String>,
}

/// Loads and validates every manifest under `paths`.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    for p in paths {
        if !p.exists() {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let docs = load_paths(paths).context("reading manifests")?;
    let mut loaded = Loaded {
        objects: vec![],
        errors: vec![],
        skipped: vec![],
    };
    for doc in docs {
        match doc.outcome {
            DocumentOutcome::Object(obj) => loaded.objects.push((format!("{} (document {})", doc.source, doc.index), obj)),
            DocumentOutcome::Skipped { api_version, kind, name } => loaded.skipped.push(format!(
                "{} (document {}): skipping {kind} {name} ({api_version}): not managed in embedded mode",
                doc.source, doc.index
            )),
            DocumentOutcome::Error(e) => loaded.errors.push(e),
        }
    }
    Ok(loaded)
}

/// `sluice validate`: prints every error and warning; exit 1 when any document is invalid.
pub fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let loaded = load(paths)?;
    for s in &loaded.skipped {
        eprintln!("warning: {s}");
    }
    for e in &loaded.errors {
        outln!("error: {e}");
    }
    outln!(
        "{} valid object(s), {} skipped, {} error(s)",
        loaded.objects.len(),
        loaded.skipped.len(),
        loaded.errors.len()
    );
    Ok(if loaded.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
