//! Scores from first-hand observation: what a validator saw, never what a worker said.

/// One instance a validator saw a worker solve: when (by the validator's clock) the first
/// valid witness for it arrived, measured from the round's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolvedInstance {
    pub latency_ms: i64,
}

/// A worker's score for one round, in `[0, 1]`.
///
/// Each of the round's `instance_count` instances is worth `1/instance_count`; a solved one
/// earns its full worth if solved at once, falling linearly to half its worth at the
/// deadline (`window_ms` after the round start). Unsolved instances earn nothing. Duplicate
/// submissions must be removed by the caller (one entry per distinct instance).
pub fn round_score(solved: &[SolvedInstance], instance_count: u32, window_ms: i64) -> f64 {
    if instance_count == 0 || window_ms <= 0 {
        return 0.0;
    }
    let per = 1.0 / f64::from(instance_count);
    let total: f64 = solved
        .iter()
        .take(instance_count as usize)
        .map(|s| {
            let frac = (s.latency_ms.clamp(0, window_ms) as f64) / window_ms as f64;
            per * (1.0 - 0.5 * frac)
        })
        .sum();
    total.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faster_and_more_is_better() {
        let fast = [SolvedInstance { latency_ms: 100 }; 4];
        let slow = [SolvedInstance { latency_ms: 9_000 }; 4];
        let fewer = [SolvedInstance { latency_ms: 100 }; 2];
        let f = round_score(&fast, 4, 10_000);
        assert!(f > round_score(&slow, 4, 10_000));
        assert!(f > round_score(&fewer, 4, 10_000));
        assert!(
            (round_score(&[SolvedInstance { latency_ms: 0 }; 4], 4, 10_000) - 1.0).abs() < 1e-12
        );
        assert_eq!(round_score(&[], 4, 10_000), 0.0);
        assert_eq!(round_score(&fast, 0, 10_000), 0.0);
        // More entries than instances cannot push a score above 1.
        assert!(round_score(&[SolvedInstance { latency_ms: 0 }; 9], 4, 10_000) <= 1.0);
    }
}
