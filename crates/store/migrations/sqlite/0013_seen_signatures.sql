-- hallmark store, version 13: signatures of signed requests already taken, kept for twice the
-- skew window so a captured request is refused after a restart too (issue 19, hole 3).

CREATE TABLE seen_signatures (
    sig BLOB PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
CREATE INDEX seen_signatures_by_time ON seen_signatures (seen_at);

-- A client's open jobs are counted on every submission (per-client queue cap).
CREATE INDEX jobs_by_client ON jobs (client, status);

-- Stake that counts for votes and weights this stake epoch (issue 19, hole 1): bonded stake
-- waits for the next epoch boundary, and only the largest validators count.
ALTER TABLE neurons ADD COLUMN voting_stake INTEGER NOT NULL DEFAULT 0;

-- Every faucet drip, for the faucet's budget across all addresses per interval.
CREATE TABLE ledger_faucet_drips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    amount INTEGER NOT NULL
);
CREATE INDEX ledger_faucet_drips_by_time ON ledger_faucet_drips (at_ms);
