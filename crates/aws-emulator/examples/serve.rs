//! Run the emulator standalone without the atrest binary:
//! `cargo run -p aws-emulator --example serve -- --data-dir /tmp/aws --aws-listen 127.0.0.1:4566`

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Option<aws_emulator::AwsCommand>,
    #[command(flatten)]
    serve: aws_emulator::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cmd = args.cmd.unwrap_or(aws_emulator::AwsCommand::Serve(args.serve));
    aws_emulator::run(cmd).await
}
