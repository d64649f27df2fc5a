-- Raw leaves stored once by content: each distinct class of logical CPUs (CPUs equal
-- apart from per-CPU fields such as APIC ids) is one row, keyed by the sha256 of its
-- canonical encoding, so 10,000 hosts of one model store its leaves once. A profile
-- version written from now on keeps only its own part in profiles.raw (capture fields,
-- the classes it uses and each CPU's own registers) and refers to its classes here;
-- versions written before keep their whole capture in profiles.raw and read as before.
CREATE TABLE leaf_classes (
    digest TEXT PRIMARY KEY,
    leaves BLOB NOT NULL
);
CREATE TABLE profile_leaf_classes (
    profile_id INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES leaf_classes (digest),
    PRIMARY KEY (profile_id, digest)
);
CREATE INDEX profile_leaf_classes_digest ON profile_leaf_classes (digest);
