-- hallmark store, version 6: staking tiers and locks, heartbeats, the devnet faucet's rate
-- limit, private (ElGamal) balances and spent payment nullifiers. Ledger tables only.

-- Stake bookkeeping per hotkey: its owner, tier and lock. `pending` is stake bonded before
-- the hotkey registered; registration moves it into `neurons.stake`, which stays the stake
-- consensus and slashing read.
CREATE TABLE ledger_stakes (
    hotkey          TEXT    PRIMARY KEY,
    coldkey         TEXT    NOT NULL,
    tier            TEXT    NOT NULL,
    pending         INTEGER NOT NULL CHECK (pending >= 0),
    locked_until_ms INTEGER NOT NULL
);

INSERT INTO ledger_stakes (hotkey, coldkey, tier, pending, locked_until_ms)
    SELECT hotkey, coldkey, CASE role WHEN 'validator' THEN 'validator' ELSE 'cpu' END, 0, 0
    FROM neurons;

-- The sequencer time of a neuron's last heartbeat (0: never).
ALTER TABLE neurons ADD COLUMN last_heartbeat_ms INTEGER NOT NULL DEFAULT 0;

-- The faucet's last drip per address (rate limit).
CREATE TABLE ledger_faucet (
    address TEXT    PRIMARY KEY,
    last_ms INTEGER NOT NULL,
    total   INTEGER NOT NULL
);

-- A worker's private balance: its ElGamal public key, the balance ciphertext and the owner's
-- decryptable hint (all hex).
CREATE TABLE ledger_confidential (
    hotkey  TEXT    PRIMARY KEY,
    pubkey  TEXT    NOT NULL,
    balance TEXT    NOT NULL,
    hint    TEXT,
    seq     INTEGER NOT NULL
);

-- Spent payment nullifiers: a job is paid once.
CREATE TABLE ledger_nullifiers (
    nullifier TEXT    PRIMARY KEY,
    job_id    TEXT    NOT NULL UNIQUE,
    worker    TEXT    NOT NULL,
    amount    INTEGER NOT NULL,
    seq       INTEGER NOT NULL
);
