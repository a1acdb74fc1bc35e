-- The public feed pages through the log by (appended_ms, idx); appended_ms never decreases
-- from one leaf to the next (the log keeps it monotonic), so this order is the index order.
CREATE INDEX log_leaves_feed ON log_leaves (appended_ms, idx);
