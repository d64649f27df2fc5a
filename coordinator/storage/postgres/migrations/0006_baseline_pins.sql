-- A cluster's pinned baseline (`cpucompat cluster baseline pin`): the features VMs
-- registered with --baseline cluster booted under, frozen until unpinned. `baseline` is
-- JSON text (vendor, features, xsave_mask, physical_bits, members, source).
CREATE TABLE baseline_pins (
    cluster text PRIMARY KEY,
    source text NOT NULL,
    baseline text NOT NULL,
    pinned_at double precision NOT NULL,
    pinned_by text NOT NULL DEFAULT ''
)
