-- The libvirt CPU definition a VM booted with (`vm register --libvirt-xml`), one line.
ALTER TABLE vms ADD COLUMN cpu_definition text;
