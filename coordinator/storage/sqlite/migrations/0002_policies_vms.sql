-- Each cluster's offline action, and the registered VMs.
CREATE TABLE policies (
    cluster TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    computed_action TEXT NOT NULL,
    pinned_action TEXT,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE vms (
    name TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    mode TEXT NOT NULL,
    boot_host TEXT,
    baseline TEXT,
    requirement TEXT NOT NULL,
    registered_at REAL NOT NULL,
    booted_at REAL NOT NULL,
    current_host TEXT
);
CREATE INDEX vms_cluster ON vms (cluster);
