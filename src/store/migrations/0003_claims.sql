-- Claims (issue 13): a reminder is sent by the process that wins the conditional update
-- `pending → sending`; the claim is that process's (`claimed_by`) until `lease_until` (Unix
-- milliseconds, UTC, by the wall clock), after which a process that died holding it no longer
-- blocks it. Every reminder that ends skipped says why (`skip_reason`).
ALTER TABLE reminders ADD COLUMN claimed_by TEXT;
ALTER TABLE reminders ADD COLUMN lease_until INTEGER;
ALTER TABLE reminders ADD COLUMN skip_reason TEXT;
