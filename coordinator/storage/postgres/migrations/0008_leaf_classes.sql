-- Raw leaves stored once by content (PostgreSQL's dialect of the SQLite file with the
-- same number): each distinct class of logical CPUs is one row keyed by the sha256 of
-- its canonical encoding; profile versions written from now on refer to their classes
-- here, versions written before keep their whole capture in profiles.raw.
CREATE TABLE leaf_classes (
    digest text PRIMARY KEY,
    leaves bytea NOT NULL
);
CREATE TABLE profile_leaf_classes (
    profile_id bigint NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    digest text NOT NULL REFERENCES leaf_classes (digest),
    PRIMARY KEY (profile_id, digest)
);
CREATE INDEX profile_leaf_classes_digest ON profile_leaf_classes (digest);
