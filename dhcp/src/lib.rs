//! DHCPv4 server for the leaf-facing links of a spine.
