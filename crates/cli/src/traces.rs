//! `hallmark traces export`: a validator's distillation traces as JSON Lines, public (redacted
//! by the validator) or private (signed for by its operator's coldkey).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use hallmark_node::traces::{TracePage, TraceQuery};

/// `hallmark traces …`.
#[derive(Debug, clap::Subcommand)]
pub enum TracesCommand {
    /// Write a validator's traces to a JSON Lines file, oldest first, one record per line.
    Export(ExportArgs),
    /// Sign and record (on the coordinator) which fields of your traces public exports may
    /// show; a later statement replaces it, `--revoke` withdraws it.
    Consent(ConsentArgs),
}

/// Arguments of `hallmark traces consent`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["fields", "revoke"])))]
pub struct ConsentArgs {
    /// Comma-separated fields to show: party, nonce, inputs.bytes, checks.detail.
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// Withdraw every earlier consent (a statement showing nothing).
    #[arg(long)]
    revoke: bool,
    /// Only traces of these lanes (comma-separated; default every lane).
    #[arg(long, value_delimiter = ',')]
    lanes: Vec<String>,
    /// The hotkey file (hex seed) of the party whose traces these are: a worker's hotkey.
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    coordinator: crate::network::CoordinatorArg,
}

/// Arguments of `hallmark traces export`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("form").required(true).args(["public", "private"])))]
pub struct ExportArgs {
    /// The public form: digests and check outcomes; keys, nonces, raw evidence and free-text
    /// details withheld (each record lists what it withheld).
    #[arg(long)]
    public: bool,
    /// The traces as kept; needs the validator operator's coldkey (`--key`).
    #[arg(long)]
    private: bool,
    /// Only traces recorded at or after this time: unix seconds, unix milliseconds, or
    /// RFC 3339 (`2026-12-03T07:00:00Z`).
    #[arg(long)]
    since: Option<String>,
    /// Only this lane's traces.
    #[arg(long)]
    lane: Option<String>,
    /// Where to write the JSON Lines (written whole to a temporary file, then renamed).
    #[arg(long)]
    out: PathBuf,
    /// The validator's base URL (default: the devnet's validator-0 with `--devnet`).
    #[arg(long, env = "HALLMARK_VALIDATOR_URL")]
    validator: Option<String>,
    /// The operator's coldkey file for `--private` (default: the devnet's coldkey).
    #[arg(long)]
    key: Option<PathBuf>,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
}

/// Unix milliseconds from seconds, milliseconds or RFC 3339.
fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        anyhow::ensure!(n >= 0, "--since {s}: a time before 1970");
        // Ten digits or fewer are seconds (until the year 2286).
        return Ok(if n < 10_000_000_000 { n * 1000 } else { n });
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--since {s:?} is not unix seconds, milliseconds or RFC 3339"))?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    anyhow::ensure!(ms >= 0, "--since {s}: a time before 1970");
    i64::try_from(ms).context("--since is too far in the future")
}

/// Runs `hallmark traces`.
pub async fn run(cmd: TracesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TracesCommand::Export(a) => export(a).await,
        TracesCommand::Consent(a) => consent(a).await,
    }
}

/// `hallmark traces consent`.
async fn consent(a: ConsentArgs) -> anyhow::Result<ExitCode> {
    use hallmark_core::trace::TraceConsent;
    let key = hallmark_node::run::load_key(&a.key)
        .with_context(|| format!("reading the key {}", a.key.display()))?;
    let mut fields = if a.revoke {
        Vec::new()
    } else {
        a.fields.clone()
    };
    fields.iter_mut().for_each(|f| *f = f.trim().to_string());
    fields.sort();
    fields.dedup();
    let mut lanes = a.lanes.clone();
    lanes.sort();
    lanes.dedup();
    let statement = TraceConsent {
        party: key.public(),
        fields,
        lanes,
        issued_ms: hallmark_core::time::now_unix_ms(),
    };
    // Refuse locally what the coordinator would refuse, with the same words.
    statement
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
    let url = a.coordinator.url()?;
    let accepted = hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::coordinator(&url))
        .await
        .map_err(crate::job::sdk_error)?
        .record_consent(&statement, &key)
        .await
        .map_err(crate::job::sdk_error)
        .with_context(|| format!("recording the consent at {url}"))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "party": accepted.party,
            "fields": statement.fields,
            "lanes": statement.lanes,
            "issued_ms": accepted.issued_ms,
            "log_index": accepted.log_index,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// `hallmark traces export`.
async fn export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let devnet = a.devnet.info()?;
    let url = match (&a.validator, &devnet) {
        (Some(u), _) => u.clone(),
        (None, Some(d)) => d
            .validators
            .first()
            .cloned()
            .context("the devnet lists no validator")?,
        (None, None) => anyhow::bail!("say which validator: --validator URL or --devnet DIR"),
    };
    let mut operator = None;
    if a.private {
        let key_file = match (&a.key, &devnet) {
            (Some(k), _) => k.clone(),
            (None, Some(d)) => d.coldkey.clone(),
            (None, None) => anyhow::bail!("--private needs the operator's coldkey: --key FILE"),
        };
        let key = hallmark_node::run::load_key(&key_file)
            .with_context(|| format!("reading the key {}", key_file.display()))?;
        operator = Some(key);
    }
    // A validator-only client: traces are read from the validator, nothing else is asked.
    let client = hallmark_sdk::Client::connect(hallmark_sdk::Endpoints {
        coordinator: String::new(),
        ledger: None,
        validators: vec![url.clone()],
    })
    .await
    .map_err(crate::job::sdk_error)?;
    let mut query = TraceQuery {
        since: a.since.as_deref().map(parse_since).transpose()?,
        lane: a.lane.clone(),
        cursor: None,
        limit: Some(if a.private {
            hallmark_node::traces::MAX_PRIVATE_TRACE_PAGE
        } else {
            hallmark_store::MAX_TRACE_PAGE
        }),
    };
    let tmp = a.out.with_extension("jsonl.partial");
    let written = write_pages(&client, &url, operator.as_ref(), &mut query, &tmp).await;
    let written = match written.and_then(|n| {
        std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
        Ok(n)
    }) {
        Ok(n) => n,
        Err(e) => {
            // No half-written export is left behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    eprintln!(
        "{written} {} trace(s) from {url} written to {}",
        if a.private { "private" } else { "public" },
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Pages through the validator's traces from `query` on, writing each record as one line of
/// `file`; returns how many were written.
async fn write_pages(
    client: &hallmark_sdk::Client,
    url: &str,
    operator: Option<&hallmark_core::Keypair>,
    query: &mut TraceQuery,
    file: &std::path::Path,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
    );
    let mut written = 0u64;
    loop {
        // The records are written as the validator sent them, whichever form.
        let page: TracePage<serde_json::Value> = match operator {
            Some(key) => client.private_traces(url, key, query).await,
            None => client.public_traces(url, query).await,
        }
        .map_err(crate::job::sdk_error)
        .with_context(|| format!("reading traces from {url}"))?;
        if page.traces.is_empty() {
            break;
        }
        query.cursor = Some(page.next_cursor);
        for t in &page.traces {
            writeln!(out, "{}", serde_json::to_string(t)?)?;
        }
        written += page.traces.len() as u64;
        eprintln!("{written} trace(s) so far");
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_seconds_milliseconds_and_rfc3339() {
        assert_eq!(parse_since("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_since("1700000000123").unwrap(), 1_700_000_000_123);
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        for bad in ["-1", "yesterday", "", "2023-13-01T00:00:00Z"] {
            assert!(parse_since(bad).is_err(), "{bad:?}");
        }
    }
}
