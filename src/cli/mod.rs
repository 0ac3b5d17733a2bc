//! Command-line interface: one module per subcommand family.

/// Writes to standard output. Unlike `print!` it does not panic when the reader has gone away
/// (`sluice crds | head -1`): the error ends the command, which then exits quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod bench;
mod bench_control;
mod bench_serving;
mod bench_sources;
mod client;
mod controller;
mod dataplane;
mod deploy;
mod gateway;
mod logs;
mod manifests;
mod run;
mod send;
mod serving;
mod sources;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Knative Eventing in one binary: brokers, triggers, channels, subscriptions, sequences and
/// parallels from the same YAML Knative takes. Other Knative kinds (sources, Services, Kafka and
/// RabbitMQ brokers) are validated and stored but not served yet.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format of `get`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// A table (NAME, READY, REASON, URL, AGE).
    Table,
    /// The objects as the API returns them, as JSON.
    Json,
    /// The objects as YAML.
    Yaml,
}

#[derive(clap::Args, Debug, Clone)]
struct ServerArgs {
    /// URL of the resource API of a running `sluice run`.
    #[arg(
        long,
        env = "SLUICE_SERVER",
        default_value = "http://127.0.0.1:8090",
        global = true,
        value_name = "URL"
    )]
    server: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the embedded control plane and data plane with the given manifests.
    Run(run::RunArgs),
    /// Run the kube-rs controllers against a Kubernetes API, with leader election on a Lease.
    Controller(controller::ControllerArgs),
    /// Run the gateway and dispatch loops alone, fed by watching a Kubernetes API.
    Dataplane(dataplane::DataplaneArgs),
    /// Create or update objects from manifest files or directories.
    Apply {
        /// Files or directories of YAML/JSON manifests.
        #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List objects of a kind, or show one.
    Get {
        /// Kind, plural or short name (broker, brokers, trigger, ksvc…).
        kind: String,
        /// Object name.
        name: Option<String>,
        /// Namespace.
        #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
        namespace: String,
        /// List across all namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "table", value_name = "FORMAT")]
        output: Output,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one object in detail: spec, status fields and conditions.
    Describe {
        /// Kind, plural or short name.
        kind: String,
        /// Object name.
        name: String,
        /// Namespace.
        #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
        namespace: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete an object.
    Delete {
        /// Kind, plural or short name.
        kind: String,
        /// Object name.
        name: String,
        /// Namespace.
        #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
        namespace: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Send a CloudEvent to a URL or a broker (like `kn event send`).
    Send(send::SendArgs),
    /// Print what the instances of a Service (`ksvc NAME`) or a Revision wrote; `-f` follows.
    Logs(logs::LogsArgs),
    /// The app `sluice bench serving` runs as a Knative Service: answers "ok" on $PORT.
    #[command(hide = true)]
    BenchApp,
    /// Check manifests offline; exit 1 and print every error with its field path.
    Validate {
        /// Files or directories of YAML/JSON manifests.
        #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
    },
    /// Print the CustomResourceDefinitions of every Knative kind as YAML.
    Crds,
    /// Print the manifests that install Sluice on a cluster (namespace, RBAC, Deployments).
    Deploy {
        /// The image the Deployments run.
        #[arg(long, default_value = deploy::DEFAULT_IMAGE, value_name = "IMAGE")]
        image: String,
    },
    /// Benchmarks of the data path.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
}

/// Runs the chosen subcommand.
pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Controller(args) => controller::controller(args).await,
        Command::Dataplane(args) => dataplane::dataplane(args).await,
        Command::Apply { files, server } => client::apply(&server.server, &files).await,
        Command::Get {
            kind,
            name,
            namespace,
            all_namespaces,
            output,
            server,
        } => {
            let ns = if all_namespaces { None } else { Some(namespace.as_str()) };
            client::get(&server.server, &kind, name.as_deref(), ns, output).await
        }
        Command::Describe {
            kind,
            name,
            namespace,
            server,
        } => client::describe(&server.server, &kind, &name, &namespace).await,
        Command::Delete {
            kind,
            name,
            namespace,
            server,
        } => client::delete(&server.server, &kind, &name, &namespace).await,
        Command::Send(args) => send::send(args).await,
        Command::Logs(args) => logs::logs(args).await,
        Command::BenchApp => bench_serving::app().await,
        Command::Validate { files } => manifests::validate(&files),
        Command::Deploy { image } => {
            out!("{}", deploy::yaml(&image));
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds => {
            out!("{}", sluice_crds::crd::crds_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { which } => bench::bench(which).await,
    }
}
