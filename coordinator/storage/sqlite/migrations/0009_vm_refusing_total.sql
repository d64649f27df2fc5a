-- How many hosts refuse each VM's requirement: `refusing_hosts` keeps only the first
-- few by host id (a VM refused by 10,000 hosts was 195 KB a row). NULL on rows stored
-- before: their `refusing_hosts` lists every host (the next recompute bounds them).
ALTER TABLE vms ADD COLUMN refusing_total INTEGER;
