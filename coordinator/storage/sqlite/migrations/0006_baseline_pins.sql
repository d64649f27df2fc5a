-- A cluster's pinned baseline (`cpucompat cluster baseline pin`): the features VMs
-- registered with --baseline cluster booted under, frozen until unpinned. `baseline` is
-- JSON (vendor, features, xsave_mask, physical_bits, members, source).
CREATE TABLE baseline_pins (
    cluster TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    baseline TEXT NOT NULL,
    pinned_at REAL NOT NULL,
    pinned_by TEXT NOT NULL DEFAULT ''
)
