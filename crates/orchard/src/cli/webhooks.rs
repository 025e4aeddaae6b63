//! `orchard webhooks …`: the workspace's webhook endpoints, through the API.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use orchard_api::Notice;

use super::jobs::FarmArgs;

#[derive(Debug, Subcommand)]
pub(super) enum WebhooksCommand {
    /// Add an endpoint; prints its signing secret as the last line (it is never shown again).
    Add {
        /// Where events are POSTed (https://…).
        url: String,
        /// Events, comma-separated: onRenderComplete, onRenderFail, onValidated, onRenderStart,
        /// onRenderCancel, onRenderSuspend.
        #[arg(long, default_value = "onRenderComplete,onRenderFail")]
        events: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// The workspace's endpoints.
    List {
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// Remove an endpoint: nothing more is sent to it.
    Remove {
        /// The endpoint's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// A new signing secret for an endpoint, printed as the last line; the old one stops signing.
    Rotate {
        /// The endpoint's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
    /// An endpoint's recent deliveries and their attempts.
    Deliveries {
        /// The endpoint's id.
        id: String,
        #[command(flatten)]
        farm: FarmArgs,
    },
}

pub(super) async fn run(command: WebhooksCommand) -> anyhow::Result<ExitCode> {
    match command {
        WebhooksCommand::Add { url, events, farm } => {
            let events = events
                .split(',')
                .map(str::trim)
                .filter(|it| !it.is_empty())
                .map(|it| {
                    Notice::parse(it).with_context(|| {
                        let known: Vec<&str> = Notice::ALL.iter().map(|it| it.name()).collect();
                        format!("unknown event {it:?}: use {}", known.join(", "))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let hook = farm.client().await?.create_webhook(&url, events).await?;
            eprintln!("Added webhook {} for {}. Its signing secret is shown once:", hook.id, names(&hook.events));
            println!("{}", hook.secret.unwrap_or_default());
        }
        WebhooksCommand::List { farm } => {
            let list = farm.client().await?.list_webhooks().await?;
            println!("{:<36}  {:<24}  {:<40}  URL", "ID", "CREATED", "EVENTS");
            for hook in list.webhooks {
                println!("{:<36}  {:<24}  {:<40}  {}", hook.id, hook.created_at, names(&hook.events), hook.url);
            }
        }
        WebhooksCommand::Remove { id, farm } => {
            farm.client().await?.delete_webhook(&id).await?;
            println!("Removed webhook {id}.");
        }
        WebhooksCommand::Rotate { id, farm } => {
            let hook = farm.client().await?.rotate_webhook_secret(&id).await?;
            eprintln!("New signing secret of webhook {} (the old one no longer signs):", hook.id);
            println!("{}", hook.secret.unwrap_or_default());
        }
        WebhooksCommand::Deliveries { id, farm } => {
            for delivery in farm.client().await?.webhook_deliveries(&id).await?.deliveries {
                println!(
                    "{}  {:<16}  {:<9}  job {}",
                    delivery.created_at, delivery.event, delivery.state, delivery.job_id
                );
                for attempt in &delivery.attempts {
                    let answer = match (attempt.status_code, &attempt.error) {
                        (Some(code), _) => format!("HTTP {code}"),
                        (None, Some(error)) => error.clone(),
                        (None, None) => "no answer".into(),
                    };
                    println!(
                        "    attempt {} at {}: {answer} in {} ms",
                        attempt.attempt, attempt.at, attempt.latency_ms
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn names(events: &[Notice]) -> String {
    events.iter().map(|it| it.name()).collect::<Vec<_>>().join(",")
}
