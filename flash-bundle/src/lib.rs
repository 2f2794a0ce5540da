//! Will render every file that goes to `/mnt/flash` (agent config, libvirt domain,
//! startup-config, install notes, checksums) from a site description.
