-- Maintenance mode per host ('' none, 'on', 'ending': off was asked, it ends at the
-- host's next fresh report) and each registered VM's own offline action (Hyper-V's number).
ALTER TABLE hosts ADD COLUMN maintenance text NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN maintenance_reason text NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN offline_action smallint;
ALTER TABLE vms ADD COLUMN refusing_hosts text NOT NULL DEFAULT '[]';
ALTER TABLE vms ADD COLUMN action_reason text NOT NULL DEFAULT '';
