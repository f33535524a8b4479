//! The `atrest` binary: parses the command line and hands off to the crates.

mod config;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "atrest",
    version,
    about = "Customer-managed-key encryption at rest with the MongoDB Atlas Admin API v2 shape"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Admin API server (zero configuration: ./atrest-data, 127.0.0.1:8080).
    #[command(after_help = "Example:\n  atrest serve --listen 127.0.0.1:0 --data-dir /tmp/atrest\n\n\
        Every option can also be set by its ATREST_* environment variable or in the TOML file given\n\
        with --config (keys are the long option names, e.g. listen = \"127.0.0.1:8080\").\n\
        Precedence: flag, then environment, then file, then the default.")]
    Serve(config::ServeArgs),
    /// The embedded AWS: run it standalone, or act as the customer (keys, roles, endpoints).
    #[command(subcommand)]
    Aws(aws_emulator::AwsCommand),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    #[command(after_help = "Example:\n  atrest completions bash > /etc/bash_completion.d/atrest")]
    Completions { shell: String },
    /// Run the product page's whole story (customer keys over private networking), narrated.
    Demo(atrest_cli::demo::DemoArgs),
    #[command(flatten)]
    Client(atrest_cli::ClientCommand),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = config::Settings::resolve(args)?;
            serve::init_logging(&settings);
            runtime()?.block_on(serve::run(settings))
        }
        Command::Completions { shell } => {
            atrest_cli::completions(&shell, &mut <Cli as clap::CommandFactory>::command())
        }
        Command::Aws(cmd) => runtime()?.block_on(aws_emulator::run(cmd)),
        Command::Demo(args) => std::process::exit(runtime()?.block_on(atrest_cli::demo::run(args))),
        Command::Client(cmd) => {
            let code = runtime()?.block_on(atrest_cli::run(cmd));
            std::process::exit(code)
        }
    }
}
