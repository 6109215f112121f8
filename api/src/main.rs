//! The `giftify` binary: `cargo run --release` serves the API with the fulfillment worker
//! in-process; `giftify --help` lists the other commands and the environment variables.

use giftify_api::cli::Cli;
use giftify_infra::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_args();
    let config = cli.config()?;
    telemetry::init(&config);
    cli.run(config).await
}
