//! Verdicts: the trace of every check a verifier ran, the thing auditors read.

use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    Pass,
    Fail,
    /// Not run because an earlier check already rejected (fail closed: skipping never accepts).
    Skipped,
}

/// One named check with its outcome and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    pub name: String,
    pub outcome: CheckOutcome,
    pub detail: String,
}

/// The result of verifying one piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    pub lane: String,
    pub accepted: bool,
    /// The rejection code of the first failed check, if any.
    pub rejection: Option<String>,
    pub checks: Vec<Check>,
}

/// Builds a [`Verdict`] check by check; the first failure names the rejection.
#[derive(Debug)]
pub struct VerdictBuilder {
    lane: String,
    rejection: Option<String>,
    checks: Vec<Check>,
}

impl VerdictBuilder {
    /// Starts a verdict for `lane`.
    pub fn new(lane: &str) -> Self {
        Self {
            lane: lane.to_string(),
            rejection: None,
            checks: Vec::new(),
        }
    }

    /// Records a passed check.
    pub fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_string(),
            outcome: CheckOutcome::Pass,
            detail: detail.into(),
        });
    }

    /// Records a failed check; `name` doubles as the rejection code.
    pub fn fail(&mut self, name: &str, detail: impl Into<String>) {
        if self.rejection.is_none() {
            self.rejection = Some(name.to_string());
        }
        self.checks.push(Check {
            name: name.to_string(),
            outcome: CheckOutcome::Fail,
            detail: detail.into(),
        });
    }

    /// Records a failed check whose rejection code differs from the check's name (one check
    /// can reject for several typed reasons).
    pub fn fail_code(&mut self, name: &str, code: &str, detail: impl Into<String>) {
        if self.rejection.is_none() {
            self.rejection = Some(code.to_string());
        }
        self.checks.push(Check {
            name: name.to_string(),
            outcome: CheckOutcome::Fail,
            detail: detail.into(),
        });
    }

    /// Records a check another verifier already ran (a sub-verdict's check), keeping its
    /// outcome; a failed one names the rejection if nothing failed before it.
    pub fn record(&mut self, check: &Check) {
        if check.outcome == CheckOutcome::Fail && self.rejection.is_none() {
            self.rejection = Some(check.name.clone());
        }
        self.checks.push(check.clone());
    }

    /// Records checks that were not reached.
    pub fn skip(&mut self, names: &[&str]) {
        for n in names {
            self.checks.push(Check {
                name: n.to_string(),
                outcome: CheckOutcome::Skipped,
                detail: "not run: an earlier check rejected".into(),
            });
        }
    }

    /// Whether any check has failed so far.
    pub fn failed(&self) -> bool {
        self.rejection.is_some()
    }

    /// The finished verdict: accepted only if at least one check ran and none failed.
    pub fn finish(self) -> Verdict {
        let ran = self.checks.iter().any(|c| c.outcome == CheckOutcome::Pass);
        Verdict {
            lane: self.lane,
            accepted: self.rejection.is_none() && ran,
            rejection: self
                .rejection
                .or_else(|| (!ran).then(|| "no_checks_run".to_string())),
            checks: self.checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_verdict_fails_closed() {
        let v = VerdictBuilder::new("x").finish();
        assert!(!v.accepted);
        assert_eq!(v.rejection.as_deref(), Some("no_checks_run"));
    }

    #[test]
    fn first_failure_names_rejection() {
        let mut b = VerdictBuilder::new("x");
        b.pass("a", "");
        b.fail("b", "bad");
        b.fail("c", "worse");
        let v = b.finish();
        assert!(!v.accepted);
        assert_eq!(v.rejection.as_deref(), Some("b"));
        assert_eq!(v.checks.len(), 3);
    }

    #[test]
    fn a_check_may_reject_under_its_own_code() {
        let mut b = VerdictBuilder::new("x");
        b.pass("size", "");
        b.fail_code("proof", "proof_invalid", "bad");
        let v = b.finish();
        assert_eq!(v.rejection.as_deref(), Some("proof_invalid"));
        assert_eq!(v.checks[1].name, "proof");
    }
}
