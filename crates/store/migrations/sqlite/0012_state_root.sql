-- hallmark store, version 12: the ledger as a pure state machine. Each transaction's link now
-- hashes its block time and the state root after it; the root is kept beside the link so a
-- replay from genesis can be compared step by step. Rows from before this version read ''.

ALTER TABLE ledger_txs ADD COLUMN state_root TEXT NOT NULL DEFAULT '';
