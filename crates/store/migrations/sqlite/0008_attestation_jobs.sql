-- hallmark store, version 8: a provider's evidence is an attestation job that validators vote
-- on; the coordinator lists the node only on the job's certificate, which the listing keeps.

ALTER TABLE compute_providers ADD COLUMN attestation_job TEXT;     -- the job its latest evidence opened
ALTER TABLE compute_providers ADD COLUMN attestation_state TEXT;   -- voting | approved | rejected
ALTER TABLE compute_providers ADD COLUMN certificate TEXT;         -- the certificate that listed it (JSON)
