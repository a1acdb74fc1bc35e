-- hallmark store, version 7: rounds, weights and Yuma epochs per round lane, so two round
-- lanes run side by side without sharing round numbers, weights or epochs. Rows from before
-- lanes were keyed belong to the first round lane, sat.

-- Coordinator: rounds are numbered per lane.
CREATE TABLE lane_rounds (
    lane       TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    round_id   TEXT    NOT NULL UNIQUE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (lane, number)
);
INSERT INTO lane_rounds (lane, number, round_id, body, created_at)
    SELECT 'sat', number, round_id, body, created_at FROM rounds;
DROP TABLE rounds;

-- Ledger: a validator's weights per lane and epoch.
CREATE TABLE lane_weights (
    lane      TEXT    NOT NULL,
    epoch     INTEGER NOT NULL,
    validator TEXT    NOT NULL,
    weights   TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (lane, epoch, validator)
);
INSERT INTO lane_weights (lane, epoch, validator, weights, seq)
    SELECT 'sat', epoch, validator, weights, seq FROM weights;
DROP TABLE weights;

-- Ledger: Yuma per lane and epoch (bonds carry over within a lane).
CREATE TABLE lane_yuma_epochs (
    lane        TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    result      TEXT    NOT NULL,
    computed_ms INTEGER NOT NULL,
    PRIMARY KEY (lane, epoch)
);
INSERT INTO lane_yuma_epochs (lane, epoch, result, computed_ms)
    SELECT 'sat', epoch, result, computed_ms FROM yuma_epochs;
DROP TABLE yuma_epochs;
