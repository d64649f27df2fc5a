-- How many of a host's oldest profile versions were pruned (--max-profile-versions).
ALTER TABLE hosts ADD COLUMN pruned_versions bigint NOT NULL DEFAULT 0
