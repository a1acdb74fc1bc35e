//! TDX and SGX quote verification: dcap-qvl checks the signature chain against stored
//! collateral at an explicit time; this module adds the policy (TCB status, advisories,
//! debug, measurement pins) and records every check in a [`Verdict`].
//!
//! Verification does no I/O: bytes, collateral, time, roots and policy in; verdict out.

use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::QuoteCollateralV3;
use hallmark_core::{Verdict, VerdictBuilder};
use serde::{Deserialize, Serialize};

use crate::error::TeeError;
use crate::policy::{TdxPolicy, TrustRoots};

/// The lane name verdicts carry.
pub const LANE: &str = "tee";

/// Everything a TDX/SGX verification depends on besides the evidence itself.
#[derive(Debug, Clone, Copy)]
pub struct TdxContext<'a> {
    /// Unix seconds at which certificates, CRLs and collateral must be valid.
    pub now: u64,
    pub roots: &'a TrustRoots,
    pub policy: &'a TdxPolicy,
}

/// What a verified quote says, in wire form (hex lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuoteSummary {
    /// `TDX` or `SGX`.
    pub tee: String,
    /// TCB status as Intel names it, e.g. `UpToDate`.
    pub status: String,
    pub advisory_ids: Vec<String>,
    /// Whether the TD (or enclave) runs in debug mode.
    pub debug: bool,
    /// TD attributes (TDX) or enclave attributes (SGX), hex.
    pub td_attributes: String,
    /// MRTD (TDX) or MRENCLAVE (SGX), hex.
    pub mr_td: String,
    /// RTMR0..3 (TDX only; empty for SGX).
    pub rtmr: Vec<String>,
    /// The 64-byte report data, hex.
    pub report_data: String,
    /// Which trust root the chain ended in.
    pub root: String,
}

/// The outcome of verifying one quote: the verdict, and the summary when the chain verified.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuoteVerification {
    pub verdict: Verdict,
    pub summary: Option<QuoteSummary>,
}

/// Check names, in order; the first failure names the rejection.
pub mod checks {
    pub const QUOTE_PARSE: &str = "quote_parse";
    pub const COLLATERAL_TIME: &str = "collateral_time_window";
    pub const COLLATERAL_AGE: &str = "collateral_age";
    pub const QUOTE_CHAIN: &str = "quote_signature_chain";
    pub const TCB_STATUS: &str = "tcb_status";
    pub const ADVISORIES: &str = "advisories";
    pub const DEBUG: &str = "debug_disabled";
    pub const MR_TD: &str = "mr_td_pin";
    pub const RTMR: &str = "rtmr_pins";
    /// Every check after parsing, for skipping.
    pub const AFTER_PARSE: &[&str] = &[
        COLLATERAL_TIME,
        COLLATERAL_AGE,
        QUOTE_CHAIN,
        TCB_STATUS,
        ADVISORIES,
        DEBUG,
        MR_TD,
        RTMR,
    ];
}

/// Reads `QuoteCollateralV3` JSON (the form PCCS clients and dcap-qvl store).
pub fn parse_collateral(json: &[u8]) -> Result<QuoteCollateralV3, TeeError> {
    serde_json::from_slice(json).map_err(|e| TeeError::Collateral(e.to_string()))
}

/// Verifies a quote against collateral under a policy, recording each check.
pub fn verify_quote(
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    ctx: &TdxContext<'_>,
) -> QuoteVerification {
    let mut v = VerdictBuilder::new(LANE);
    let parsed = match Quote::parse(quote) {
        Ok(q) => q,
        Err(e) => {
            v.fail(checks::QUOTE_PARSE, format!("not a DCAP quote: {e}"));
            v.skip(checks::AFTER_PARSE);
            return QuoteVerification {
                verdict: v.finish(),
                summary: None,
            };
        }
    };
    v.pass(
        checks::QUOTE_PARSE,
        format!("quote v{} ({} bytes)", parsed.header.version, quote.len()),
    );

    // The chain itself (dcap-qvl), tried against each trusted root in order.
    let mut errors = Vec::new();
    let mut time_errors = Vec::new();
    let mut verified = None;
    for root in &ctx.roots.roots {
        match root.quote_verifier().verify(quote, collateral, ctx.now) {
            Ok(report) => {
                verified = Some((root.name.clone(), report));
                break;
            }
            Err(e) => {
                let msg = format!("{}: {e:#}", root.name);
                if is_time_error(&msg) {
                    time_errors.push(msg.clone());
                }
                errors.push(msg);
            }
        }
    }

    // Time first: an expired or not-yet-valid collateral item is named as such, whether our
    // own reading of the TCB info / QE identity dates or dcap-qvl's CRL and certificate
    // checks caught it.
    match collateral_window(collateral) {
        Ok((issued, next_update)) => {
            if ctx.now < issued {
                v.fail(
                    checks::COLLATERAL_TIME,
                    format!("collateral issued at {issued}, after now {}", ctx.now),
                );
            } else if ctx.now > next_update {
                v.fail(
                    checks::COLLATERAL_TIME,
                    format!("collateral expired at {next_update}; now {}", ctx.now),
                );
            } else if !time_errors.is_empty() && verified.is_none() {
                v.fail(checks::COLLATERAL_TIME, time_errors.join("; "));
            } else {
                v.pass(
                    checks::COLLATERAL_TIME,
                    format!(
                        "now {} within TCB info / QE identity window {issued}..{next_update}",
                        ctx.now
                    ),
                );
            }
            let age = ctx.now.saturating_sub(issued);
            if age > ctx.policy.max_collateral_age_secs {
                v.fail(
                    checks::COLLATERAL_AGE,
                    format!(
                        "collateral is {age} s old; policy allows {}",
                        ctx.policy.max_collateral_age_secs
                    ),
                );
            } else {
                v.pass(checks::COLLATERAL_AGE, format!("{age} s old"));
            }
        }
        Err(e) => {
            v.fail(checks::COLLATERAL_TIME, e);
            v.skip(&[checks::COLLATERAL_AGE]);
        }
    }
    if v.failed() {
        v.skip(&checks::AFTER_PARSE[2..]);
        return QuoteVerification {
            verdict: v.finish(),
            summary: None,
        };
    }
    let Some((root, report)) = verified else {
        v.fail(checks::QUOTE_CHAIN, errors.join("; "));
        v.skip(&checks::AFTER_PARSE[3..]);
        return QuoteVerification {
            verdict: v.finish(),
            summary: None,
        };
    };
    v.pass(checks::QUOTE_CHAIN, format!("verified against {root}"));

    let summary = summarize(&report.report, &report.status, &report.advisory_ids, root);
    apply_policy(&mut v, &summary, ctx.policy);
    QuoteVerification {
        verdict: v.finish(),
        summary: Some(summary),
    }
}

fn apply_policy(v: &mut VerdictBuilder, s: &QuoteSummary, policy: &TdxPolicy) {
    if policy.allowed_tcb_statuses.iter().any(|a| a == &s.status) {
        v.pass(checks::TCB_STATUS, s.status.clone());
    } else {
        v.fail(
            checks::TCB_STATUS,
            format!(
                "{} not in allowed {:?}",
                s.status, policy.allowed_tcb_statuses
            ),
        );
    }
    let unlisted: Vec<&String> = s
        .advisory_ids
        .iter()
        .filter(|a| !policy.allowed_advisories.contains(a))
        .collect();
    if unlisted.is_empty() {
        v.pass(
            checks::ADVISORIES,
            format!("{} advisories, all allowed", s.advisory_ids.len()),
        );
    } else {
        v.fail(
            checks::ADVISORIES,
            format!("advisories not on the allowlist: {unlisted:?}"),
        );
    }
    if s.debug && !policy.allow_debug {
        v.fail(
            checks::DEBUG,
            format!("debug bit set (attributes {})", s.td_attributes),
        );
    } else {
        v.pass(checks::DEBUG, format!("attributes {}", s.td_attributes));
    }
    if policy.mr_td.is_empty() {
        v.pass(checks::MR_TD, "no MRTD pin configured");
    } else if policy
        .mr_td
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&s.mr_td))
    {
        v.pass(checks::MR_TD, "MRTD is pinned");
    } else {
        v.fail(checks::MR_TD, format!("MRTD {} is not pinned", s.mr_td));
    }
    let mut mismatched = Vec::new();
    for (i, pin) in policy.rtmr_pins().iter().enumerate() {
        if let Some(pin) = pin {
            let actual = s.rtmr.get(i).map(String::as_str).unwrap_or("");
            if !pin.eq_ignore_ascii_case(actual) {
                mismatched.push(format!("RTMR{i} is {actual}, pinned {pin}"));
            }
        }
    }
    if mismatched.is_empty() {
        v.pass(checks::RTMR, "pinned RTMRs match");
    } else {
        v.fail(checks::RTMR, mismatched.join("; "));
    }
}

fn summarize(report: &Report, status: &str, advisories: &[String], root: String) -> QuoteSummary {
    // Every TD report variant starts with the TD 1.0 body.
    let td = match report {
        Report::SgxEnclave(r) => {
            return QuoteSummary {
                tee: "SGX".into(),
                status: status.to_string(),
                advisory_ids: advisories.to_vec(),
                debug: r.attributes[0] & 0x02 != 0,
                td_attributes: hex::encode(r.attributes),
                mr_td: hex::encode(r.mr_enclave),
                rtmr: Vec::new(),
                report_data: hex::encode(r.report_data),
                root,
            }
        }
        Report::TD10(td) => td,
        Report::TD15(td) => &td.base,
        Report::TD15Ex(td) => &td.base.base,
    };
    QuoteSummary {
        tee: "TDX".into(),
        status: status.to_string(),
        advisory_ids: advisories.to_vec(),
        // TUD bits 7:0: bit 0 is DEBUG; any TUD bit makes the TD untrusted.
        debug: td.td_attributes[0] != 0,
        td_attributes: hex::encode(td.td_attributes),
        mr_td: hex::encode(td.mr_td),
        rtmr: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3]
            .iter()
            .map(hex::encode)
            .collect(),
        report_data: hex::encode(td.report_data),
        root,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dated {
    issue_date: String,
    next_update: String,
}

/// The window in which both TCB info and QE identity are current: (latest issue, earliest
/// next update). dcap-qvl enforces this too; checking it first names the failure.
fn collateral_window(c: &QuoteCollateralV3) -> Result<(u64, u64), String> {
    let mut issued = 0u64;
    let mut next = u64::MAX;
    for (name, json) in [("tcb_info", &c.tcb_info), ("qe_identity", &c.qe_identity)] {
        let d: Dated = serde_json::from_str(json).map_err(|e| format!("{name}: {e}"))?;
        let i = hallmark_core::time::parse_rfc3339(&d.issue_date)
            .map_err(|e| format!("{name}.issueDate: {e}"))?;
        let n = hallmark_core::time::parse_rfc3339(&d.next_update)
            .map_err(|e| format!("{name}.nextUpdate: {e}"))?;
        issued = issued.max(u64::try_from(i).unwrap_or(0));
        next = next.min(u64::try_from(n).unwrap_or(0));
    }
    Ok((issued, next))
}

/// Whether a dcap-qvl error is about time (expired or not yet valid certificates, CRLs or
/// collateral) rather than about signatures or contents.
fn is_time_error(msg: &str) -> bool {
    ["Expired", "expired", "NotValidYet", "in the future"]
        .iter()
        .any(|k| msg.contains(k))
}
