-- The validator stake table a job settlement was checked against (JSON {ss58: stake}), so its
-- certificate stays re-checkable offline after later slashings move stakes.
ALTER TABLE ledger_settled_jobs ADD COLUMN stakes TEXT NOT NULL DEFAULT '{}';
