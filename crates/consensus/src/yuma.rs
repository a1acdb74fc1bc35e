//! The Yuma consensus epoch, as opentensor/subtensor computes it each tempo (the original
//! Yuma with EMA bonds, not Yuma 3's liquid alpha).
//!
//! Given validators' stakes and weights:
//! 1. stake is normalised; inactive validators' stake is masked out and the rest renormalised;
//! 2. weights are row-normalised (a square matrix is read as neuron → neuron, so self-weights
//!    on the diagonal are masked first, as subtensor does);
//! 3. consensus per column is the stake-weighted median at quantile `kappa`;
//! 4. weights are clipped to consensus; a validator's trust is the sum of its clipped weights;
//! 5. incentive is the normalised stake-weighted column sum of clipped weights;
//! 6. bonds: ΔB = (weights interpolated towards clipped by `bonds_penalty`) ∘ stake,
//!    column-normalised; the EMA `alpha·ΔB + (1−alpha)·B` is column-normalised again;
//! 7. dividends are `Σ_j B_ij · incentive_j`, normalised;
//! 8. emission shares are incentive + dividends normalised (stake when both are zero).
//!
//! Arithmetic is `f64` where subtensor uses 32.32 fixed point; outputs agree with subtensor's
//! test traces to about 1e-8 (see `tests/yuma_subtensor.rs`).

use serde::{Deserialize, Serialize};

/// Inputs of one epoch, in the JSON shape `hallmark consensus yuma` reads.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YumaInput {
    /// Stake per row (validator). Any non-negative scale; normalised here.
    pub stake: Vec<f64>,
    /// Weights: one row per stake entry, one column per neuron scored. Any non-negative scale.
    pub weights: Vec<Vec<f64>>,
    /// Majority ratio for the consensus quantile (subtensor default 0.5).
    #[serde(default = "default_kappa")]
    pub kappa: f64,
    /// Previous bonds, same shape as `weights`; absent means no bonds yet.
    #[serde(default)]
    pub bonds: Option<Vec<Vec<f64>>>,
    /// EMA coefficient for new bonds (subtensor default 0.1: bonds_moving_average 0.9).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How far bonds follow clipped rather than raw weights (subtensor default 1).
    #[serde(default = "default_bonds_penalty")]
    pub bonds_penalty: f64,
    /// Which rows are active; an inactive validator's stake is masked. Absent: all active.
    #[serde(default)]
    pub active: Option<Vec<bool>>,
}

fn default_kappa() -> f64 {
    0.5
}
fn default_alpha() -> f64 {
    0.1
}
fn default_bonds_penalty() -> f64 {
    1.0
}

/// The result of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct YumaOutput {
    /// Stake-weighted median weight per column.
    pub consensus: Vec<f64>,
    /// Normalised share of emission each column (neuron) earns as a server.
    pub incentive: Vec<f64>,
    /// Normalised share each row (validator) earns from its bonds.
    pub dividends: Vec<f64>,
    /// The new bonds (EMA, column-normalised); feed them back as the next epoch's `bonds`.
    pub bonds: Vec<Vec<f64>>,
    /// Sum of each validator's weights after clipping to consensus.
    pub validator_trust: Vec<f64>,
    /// Emission share per index: incentive + dividends, normalised. For a square matrix index
    /// i is neuron i; otherwise the first `rows` entries are validators' dividends shares and
    /// the rest the columns' incentive shares.
    pub emission: Vec<f64>,
}

/// Inputs Yuma cannot compute with. Each names what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum YumaError {
    /// `weights` has a different number of rows than `stake` has entries.
    #[error("weights has {weights} rows but stake has {stake} entries")]
    RowCountMismatch { stake: usize, weights: usize },
    /// A row of a matrix is shorter or longer than the first row.
    #[error("{matrix} row {row} has {len} columns, {expected} expected")]
    RaggedMatrix {
        matrix: &'static str,
        row: usize,
        len: usize,
        expected: usize,
    },
    /// `bonds` does not have the shape of `weights`.
    #[error("bonds must have the shape of weights ({rows}x{cols})")]
    BondsShape { rows: usize, cols: usize },
    /// `active` does not have one entry per stake.
    #[error("active has {active} entries but stake has {stake}")]
    ActiveLength { stake: usize, active: usize },
    /// A negative, NaN or infinite number.
    #[error("{field} must be finite and non-negative")]
    InvalidNumber { field: &'static str },
    /// A parameter outside [0, 1].
    #[error("{field} must be in [0, 1], got {value}")]
    OutOfRange { field: &'static str, value: f64 },
}

impl YumaError {
    /// A stable snake_case code for CLI and wire errors.
    pub fn code(&self) -> &'static str {
        match self {
            YumaError::RowCountMismatch { .. } => "row_count_mismatch",
            YumaError::RaggedMatrix { .. } => "ragged_matrix",
            YumaError::BondsShape { .. } => "bonds_shape",
            YumaError::ActiveLength { .. } => "active_length",
            YumaError::InvalidNumber { .. } => "invalid_number",
            YumaError::OutOfRange { .. } => "out_of_range",
        }
    }
}

type Matrix = Vec<Vec<f64>>;

fn check_matrix(name: &'static str, m: &Matrix, cols: usize) -> Result<(), YumaError> {
    for (row, r) in m.iter().enumerate() {
        if r.len() != cols {
            return Err(YumaError::RaggedMatrix {
                matrix: name,
                row,
                len: r.len(),
                expected: cols,
            });
        }
        if r.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(YumaError::InvalidNumber { field: name });
        }
    }
    Ok(())
}

fn check_unit(field: &'static str, value: f64) -> Result<(), YumaError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(YumaError::OutOfRange { field, value });
    }
    Ok(())
}

impl YumaInput {
    /// Checks shapes and ranges; every error names the field.
    pub fn validate(&self) -> Result<(), YumaError> {
        if self.weights.len() != self.stake.len() {
            return Err(YumaError::RowCountMismatch {
                stake: self.stake.len(),
                weights: self.weights.len(),
            });
        }
        if self.stake.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(YumaError::InvalidNumber { field: "stake" });
        }
        let cols = self.weights.first().map_or(0, Vec::len);
        check_matrix("weights", &self.weights, cols)?;
        if let Some(b) = &self.bonds {
            if b.len() != self.weights.len() {
                return Err(YumaError::BondsShape {
                    rows: self.weights.len(),
                    cols,
                });
            }
            check_matrix("bonds", b, cols)?;
        }
        if let Some(a) = &self.active {
            if a.len() != self.stake.len() {
                return Err(YumaError::ActiveLength {
                    stake: self.stake.len(),
                    active: a.len(),
                });
            }
        }
        check_unit("kappa", self.kappa)?;
        check_unit("alpha", self.alpha)?;
        check_unit("bonds_penalty", self.bonds_penalty)?;
        Ok(())
    }
}

/// Scales a vector to sum 1; a zero vector stays zero.
fn normalize(v: &mut [f64]) {
    let sum: f64 = v.iter().sum();
    if sum > 0.0 {
        v.iter_mut().for_each(|x| *x /= sum);
    }
}

fn row_normalize(m: &mut Matrix) {
    m.iter_mut().for_each(|r| normalize(r));
}

fn col_normalize(m: &mut Matrix) {
    let cols = m.first().map_or(0, Vec::len);
    for j in 0..cols {
        let sum: f64 = m.iter().map(|r| r[j]).sum();
        if sum > 0.0 {
            m.iter_mut().for_each(|r| r[j] /= sum);
        }
    }
}

/// The stake-weighted quantile of one column: the smallest score whose cumulative stake
/// (scores sorted ascending) exceeds `stake_sum − kappa`; the largest score when none does.
/// `entries` are (stake, score) with stake > 0.
fn weighted_quantile(entries: &mut [(f64, f64)], kappa: f64) -> f64 {
    if entries.is_empty() {
        return 0.0;
    }
    let total: f64 = entries.iter().map(|e| e.0).sum();
    entries.iter_mut().for_each(|e| e.0 /= total);
    let stake_sum: f64 = entries.iter().map(|e| e.0).sum();
    let minority = stake_sum - kappa;
    entries.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut cumulative = 0.0;
    let mut i = 0;
    while i < entries.len() {
        // Take every entry with this score at once: ties share one step of the integral.
        let score = entries[i].1;
        while i < entries.len() && entries[i].1 == score {
            cumulative += entries[i].0;
            i += 1;
        }
        if cumulative > minority {
            return score;
        }
    }
    entries[entries.len() - 1].1
}

/// Stake-weighted median per column at majority `kappa`, over rows with positive stake.
pub fn weighted_median_col(stake: &[f64], weights: &Matrix, kappa: f64) -> Vec<f64> {
    let cols = weights.first().map_or(0, Vec::len);
    let mut entries = Vec::with_capacity(stake.len());
    (0..cols)
        .map(|j| {
            entries.clear();
            entries.extend(
                stake
                    .iter()
                    .zip(weights)
                    .filter(|(s, _)| **s > 0.0)
                    .map(|(s, row)| (*s, row[j])),
            );
            weighted_quantile(&mut entries, kappa)
        })
        .collect()
}

/// Normalised stake, active stake and row-normalised weights, as every Yuma step reads them.
struct Prepared {
    stake: Vec<f64>,
    active_stake: Vec<f64>,
    weights: Matrix,
}

fn prepare(input: &YumaInput) -> Result<Prepared, YumaError> {
    input.validate()?;
    let rows = input.stake.len();
    let cols = input.weights.first().map_or(0, Vec::len);
    let mut stake = input.stake.clone();
    normalize(&mut stake);
    let mut active_stake = stake.clone();
    if let Some(active) = &input.active {
        active_stake
            .iter_mut()
            .zip(active)
            .filter(|(_, a)| !**a)
            .for_each(|(s, _)| *s = 0.0);
    }
    normalize(&mut active_stake);
    let mut weights = input.weights.clone();
    if rows == cols {
        // Rows and columns are the same neurons: nobody scores itself.
        (0..rows).for_each(|i| weights[i][i] = 0.0);
    }
    row_normalize(&mut weights);
    Ok(Prepared {
        stake,
        active_stake,
        weights,
    })
}

/// Only the consensus column vector of the epoch (step 3), on the same prepared inputs.
pub fn yuma_consensus(input: &YumaInput) -> Result<Vec<f64>, YumaError> {
    let p = prepare(input)?;
    Ok(weighted_median_col(
        &p.active_stake,
        &p.weights,
        input.kappa,
    ))
}

/// Runs one Yuma epoch.
pub fn yuma_epoch(input: &YumaInput) -> Result<YumaOutput, YumaError> {
    let Prepared {
        stake,
        active_stake,
        weights,
    } = prepare(input)?;
    let rows = input.stake.len();
    let cols = input.weights.first().map_or(0, Vec::len);

    let consensus = weighted_median_col(&active_stake, &weights, input.kappa);
    let clipped: Matrix = weights
        .iter()
        .map(|r| r.iter().zip(&consensus).map(|(w, c)| w.min(*c)).collect())
        .collect();
    let validator_trust: Vec<f64> = clipped.iter().map(|r| r.iter().sum()).collect();

    let mut incentive = vec![0.0; cols];
    for (row, s) in clipped.iter().zip(&active_stake) {
        incentive
            .iter_mut()
            .zip(row)
            .for_each(|(acc, w)| *acc += s * w);
    }
    normalize(&mut incentive);

    let mut bonds = input
        .bonds
        .clone()
        .unwrap_or_else(|| vec![vec![0.0; cols]; rows]);
    col_normalize(&mut bonds);
    let mut delta: Matrix = weights
        .iter()
        .zip(&clipped)
        .zip(&active_stake)
        .map(|((w, c), s)| {
            w.iter()
                .zip(c)
                .map(|(w, c)| s * (w + input.bonds_penalty * (c - w)))
                .collect()
        })
        .collect();
    col_normalize(&mut delta);
    let mut ema: Matrix = delta
        .iter()
        .zip(&bonds)
        .map(|(d, b)| {
            d.iter()
                .zip(b)
                .map(|(d, b)| input.alpha * d + (1.0 - input.alpha) * b)
                .collect()
        })
        .collect();
    col_normalize(&mut ema);

    let mut dividends: Vec<f64> = ema
        .iter()
        .map(|r| r.iter().zip(&incentive).map(|(b, i)| b * i).sum())
        .collect();
    normalize(&mut dividends);

    let mut emission: Vec<f64> = if rows == cols {
        incentive
            .iter()
            .zip(&dividends)
            .map(|(i, d)| i + d)
            .collect()
    } else {
        dividends.iter().chain(&incentive).copied().collect()
    };
    if emission.iter().sum::<f64>() > 0.0 {
        normalize(&mut emission);
    } else {
        // Nothing earned: emission follows (active) stake, as subtensor does.
        let base = if active_stake.iter().any(|s| *s > 0.0) {
            &active_stake
        } else {
            &stake
        };
        emission = base.clone();
        if rows != cols {
            emission.extend(std::iter::repeat_n(0.0, cols));
        }
    }

    Ok(YumaOutput {
        consensus,
        incentive,
        dividends,
        bonds: ema,
        validator_trust,
        emission,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_shapes_and_numbers_are_named() {
        let ok = YumaInput {
            stake: vec![1.0, 1.0],
            weights: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            kappa: 0.5,
            bonds: None,
            alpha: 0.1,
            bonds_penalty: 1.0,
            active: None,
        };
        assert!(yuma_epoch(&ok).is_ok());
        let mut bad = ok.clone();
        bad.weights.pop();
        assert_eq!(yuma_epoch(&bad).unwrap_err().code(), "row_count_mismatch");
        let mut bad = ok.clone();
        bad.weights[1].push(1.0);
        assert_eq!(yuma_epoch(&bad).unwrap_err().code(), "ragged_matrix");
        let mut bad = ok.clone();
        bad.stake[0] = f64::NAN;
        assert_eq!(yuma_epoch(&bad).unwrap_err().code(), "invalid_number");
        let mut bad = ok.clone();
        bad.kappa = 1.5;
        assert_eq!(yuma_epoch(&bad).unwrap_err().code(), "out_of_range");
        let mut bad = ok.clone();
        bad.bonds = Some(vec![vec![0.0]]);
        assert_eq!(yuma_epoch(&bad).unwrap_err().code(), "bonds_shape");
        let mut bad = ok;
        bad.active = Some(vec![true]);
        assert_eq!(yuma_epoch(&bad).unwrap_err().code(), "active_length");
    }
}
