-- Each cluster's offline action (Hyper-V's numbers), and the registered VMs.
CREATE TABLE policies (
    cluster text PRIMARY KEY,
    action smallint NOT NULL,
    computed_action smallint NOT NULL,
    pinned_action smallint,
    reason text NOT NULL,
    details text NOT NULL,
    version bigint NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE vms (
    name text PRIMARY KEY,
    cluster text NOT NULL,
    mode text NOT NULL,
    boot_host text,
    baseline text,
    requirement text NOT NULL,
    registered_at double precision NOT NULL,
    booted_at double precision NOT NULL,
    current_host text
);
CREATE INDEX vms_cluster ON vms (cluster);
