-- Maintenance mode per host ('' none, 'on', 'ending': off was asked, it ends at the
-- host's next fresh report) and each registered VM's own offline action.
ALTER TABLE hosts ADD COLUMN maintenance TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN maintenance_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN offline_action TEXT;
ALTER TABLE vms ADD COLUMN refusing_hosts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE vms ADD COLUMN action_reason TEXT NOT NULL DEFAULT '';
