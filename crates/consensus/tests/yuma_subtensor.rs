//! Yuma against opentensor/subtensor's own test vectors: the `weighted_median_col` cases of
//! `pallets/subtensor/src/tests/math.rs` and the epoch traces `test_bonds` in
//! `pallets/subtensor/src/tests/epoch.rs` records (inputs: the raw u16 weights and bonds and
//! stakes; outputs: the printed consensus, trust, incentive, bonds, dividends and emission).
//! Subtensor computes in 32.32 fixed point and we in f64, so values agree to a tolerance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallmark_consensus::yuma::{weighted_median_col, yuma_epoch, YumaInput, YumaOutput};

const TOL: f64 = 2e-6;

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL,
            "{what}[{i}]: got {g}, subtensor {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn weighted_median_col_matches_subtensor_math_tests() {
    // test_math_weighted_median_col: 4 validators × 3 columns, row-major.
    let w = |v: [f64; 12]| -> Vec<Vec<f64>> { v.chunks(3).map(|c| c.to_vec()).collect() };
    let weights = w([0., 0.1, 0., 0., 0.2, 0.4, 0., 0.3, 0.1, 0., 0.4, 0.5]);
    let stake = [0., 0.75, 0.25, 0.];
    assert_eq!(
        weighted_median_col(&stake, &weights, 0.24),
        vec![0., 0.3, 0.4]
    );
    assert_eq!(
        weighted_median_col(&stake, &weights, 0.26),
        vec![0., 0.2, 0.4]
    );
    assert_eq!(
        weighted_median_col(&stake, &weights, 0.76),
        vec![0., 0.2, 0.1]
    );
    let weights = w([0., 0.1, 0., 0., 0.2, 0.4, 0., 0.3, 0.1, 0., 0., 0.5]);
    assert_eq!(
        weighted_median_col(&[0., 0.3, 0.2, 0.5], &weights, 0.51),
        vec![0., 0., 0.4]
    );
    // All-zero stake: nothing to take a median over.
    assert_eq!(
        weighted_median_col(&[0., 0.], &vec![vec![0., 0.]; 2], 0.5),
        vec![0., 0.]
    );
}

/// A row of subtensor's u16 weights/bonds for uids 4..7 on an 8-neuron subnet.
fn servers(v: [f64; 4]) -> Vec<f64> {
    let mut row = vec![0.0; 8];
    row[4..].copy_from_slice(&v);
    row
}

fn at(uid: usize, v: f64) -> Vec<f64> {
    let mut row = vec![0.0; 8];
    row[uid] = v;
    row
}

const SERVER_WEIGHTS: [f64; 4] = [16383., 32767., 49149., 65535.];

fn epoch(weights: Vec<Vec<f64>>, bonds: Option<Vec<Vec<f64>>>) -> YumaOutput {
    let mut w = weights;
    w.resize(8, vec![0.0; 8]);
    let bonds = bonds.map(|mut b| {
        b.resize(8, vec![0.0; 8]);
        b
    });
    let input = YumaInput {
        stake: vec![1., 2., 3., 4., 0., 0., 0., 0.],
        weights: w,
        kappa: 0.5,
        bonds,
        alpha: 0.1,
        bonds_penalty: 1.0,
        active: None,
    };
    yuma_epoch(&input).expect("valid input")
}

fn col(m: &[Vec<f64>], j: usize) -> Vec<f64> {
    m.iter().take(4).map(|r| r[j]).collect()
}

#[test]
fn test_bonds_epoch_1_every_validator_weights_the_servers() {
    let out = epoch(vec![servers(SERVER_WEIGHTS); 4], None);
    let c = [0.0999975584, 0.2000012207, 0.2999926754, 0.400008545];
    close(
        "consensus",
        &out.consensus,
        &[&[0.0; 4][..], &c[..]].concat(),
    );
    close(
        "validator_trust",
        &out.validator_trust,
        &[1., 1., 1., 1., 0., 0., 0., 0.],
    );
    close(
        "incentive",
        &out.incentive,
        &[
            0.,
            0.,
            0.,
            0.,
            0.0999975582,
            0.2000012207,
            0.2999926752,
            0.4000085455,
        ],
    );
    close(
        "dividends",
        &out.dividends,
        &[
            0.0999999978,
            0.1999999983,
            0.3000000012,
            0.4000000022,
            0.,
            0.,
            0.,
            0.,
        ],
    );
    close(
        "bonds col 4",
        &col(&out.bonds, 4),
        &[0.0999999982, 0.199999999, 0.2999999996, 0.4000000027],
    );
    close(
        "emission",
        &out.emission,
        &[
            0.0499999989,
            0.0999999992,
            0.1500000006,
            0.2000000011,
            0.049998779,
            0.1000006103,
            0.1499963375,
            0.2000042726,
        ],
    );
}

#[test]
fn test_bonds_epoch_2_self_weight_is_masked_and_bonds_decay() {
    let mut weights = vec![at(0, 65535.)];
    weights.extend(vec![servers(SERVER_WEIGHTS); 3]);
    let bonds = vec![
        servers([16383.; 4]),
        servers([32767.; 4]),
        servers([49151.; 4]),
        servers([65535.; 4]),
    ];
    let out = epoch(weights, Some(bonds));
    close(
        "validator_trust",
        &out.validator_trust,
        &[0., 1., 1., 1., 0., 0., 0., 0.],
    );
    close(
        "incentive",
        &out.incentive,
        &[
            0.,
            0.,
            0.,
            0.,
            0.0999975582,
            0.2000012207,
            0.2999926754,
            0.4000085455,
        ],
    );
    close(
        "bonds col 4",
        &col(&out.bonds, 4),
        &[0.0899967037, 0.2022211235, 0.3033344317, 0.4044477409],
    );
    close(
        "dividends",
        &out.dividends,
        &[
            0.0899967032,
            0.2022211233,
            0.303334432,
            0.404447741,
            0.,
            0.,
            0.,
            0.,
        ],
    );
    close(
        "emission",
        &out.emission,
        &[
            0.0449983515,
            0.1011105615,
            0.1516672159,
            0.2022238704,
            0.049998779,
            0.1000006103,
            0.1499963377,
            0.2000042726,
        ],
    );
}

#[test]
fn test_bonds_epoch_4_no_consensus_pays_by_stake() {
    let weights = vec![
        at(0, 65535.),
        at(1, 65535.),
        at(2, 65535.),
        servers(SERVER_WEIGHTS),
    ];
    let bonds = vec![
        servers([12603.; 4]),
        servers([28321.; 4]),
        servers([49151.; 4]),
        servers([65535.; 4]),
    ];
    let out = epoch(weights, Some(bonds));
    close("consensus", &out.consensus, &[0.; 8]);
    close("incentive", &out.incentive, &[0.; 8]);
    close("dividends", &out.dividends, &[0.; 8]);
    close(
        "bonds col 7",
        &col(&out.bonds, 7),
        &[0.0809909385, 0.1819998713, 0.3158601632, 0.4211490266],
    );
    close(
        "emission",
        &out.emission,
        &[0.1, 0.2, 0.3, 0.4, 0., 0., 0., 0.],
    );
}

#[test]
fn test_bonds_epoch_5_consensus_clips_the_outlier() {
    let weights = vec![
        at(0, 65535.),
        at(1, 65535.),
        at(7, 65535.),
        servers(SERVER_WEIGHTS),
    ];
    let bonds = vec![
        servers([12602.; 4]),
        servers([28320.; 4]),
        servers([49150.; 4]),
        servers([65535.; 4]),
    ];
    let out = epoch(weights, Some(bonds));
    close(
        "consensus",
        &out.consensus,
        &[0., 0., 0., 0., 0., 0., 0., 0.400008545],
    );
    close(
        "validator_trust",
        &out.validator_trust,
        &[0., 0., 0.400008545, 0.400008545, 0., 0., 0., 0.],
    );
    close(
        "incentive",
        &out.incentive,
        &[0., 0., 0., 0., 0., 0., 0., 1.],
    );
    close(
        "bonds col 4",
        &col(&out.bonds, 4),
        &[0.0809860737, 0.1819969537, 0.3158598263, 0.421157146],
    );
    close(
        "bonds col 7",
        &col(&out.bonds, 7),
        &[0.0728874663, 0.1637972582, 0.3271309866, 0.4361842885],
    );
    close(
        "dividends",
        &out.dividends,
        &[
            0.0728874663,
            0.1637972582,
            0.3271309866,
            0.4361842885,
            0.,
            0.,
            0.,
            0.,
        ],
    );
    close(
        "emission",
        &out.emission,
        &[
            0.0364437331,
            0.081898629,
            0.1635654932,
            0.2180921442,
            0.,
            0.,
            0.,
            0.5,
        ],
    );
}
