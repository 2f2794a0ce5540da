//! Address plans: which address a link's leaf gets, and which router and mask.
//!
//! On a point-to-point link the plan comes from the spine's own address: on a /31
//! the other address, on a /30 the other usable host. A wider prefix or an
//! unnumbered link (a /32, or no address) is served only from an explicit pool.
//! Deriving a plan is pure: the caller supplies the spine's address, and gets a plan
//! or the reason the link cannot be served.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// How addresses are given out on one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AddressPlan {
    /// A /31 or /30 between spine and leaf: the leaf gets the one other address,
    /// and the address belongs to the link, whichever leaf is plugged in.
    PointToPoint {
        /// The spine's address: server identifier, router and reply source.
        spine: Ipv4Addr,
        /// The address the leaf gets.
        leaf: Ipv4Addr,
        /// 31 or 30.
        prefix_len: u8,
    },
    /// Addresses from an explicit range, for wider or unnumbered links.
    Pool(PoolPlan),
}

/// An explicit range of addresses for one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolPlan {
    /// The spine's address used as server identifier and reply source.
    pub server: Ipv4Addr,
    /// Option 3 for the leaves.
    pub router: Ipv4Addr,
    /// Prefix length for option 1.
    pub prefix_len: u8,
    /// First address of the range (inclusive).
    pub first: Ipv4Addr,
    /// Last address of the range (inclusive).
    pub last: Ipv4Addr,
}

/// Why a link has no address plan and is not served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NoPlan {
    /// The spine has no IPv4 address on the link and no pool is configured.
    #[error("no IPv4 address on the link and no pool configured for it")]
    NoAddress,
    /// A /32 (typically `ip address unnumbered Loopback0`): nothing to derive from.
    #[error("unnumbered link ({address}/32) needs a pool in config ([[dhcp.link]])")]
    Unnumbered {
        /// The spine's borrowed address.
        address: Ipv4Addr,
    },
    /// A prefix wider than /30: too many possible neighbours to pick one.
    #[error(
        "/{prefix_len} is wider than a point-to-point /30 or /31; configure a pool ([[dhcp.link]])"
    )]
    NeedsPool {
        /// The prefix length found.
        prefix_len: u8,
    },
    /// The spine holds the network or broadcast address of a /30.
    #[error("{address}/30 is the network or broadcast address of its /30")]
    BadSlash30 {
        /// The spine's address.
        address: Ipv4Addr,
    },
    /// The configured pool does not fit the link.
    #[error("pool {first}-{last}: {why}")]
    BadPool {
        /// Pool start.
        first: Ipv4Addr,
        /// Pool end.
        last: Ipv4Addr,
        /// What is wrong with it.
        why: String,
    },
}

/// The spine's address on a link, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpineAddress {
    /// The address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// A pool as configured for a link, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// First address of the range.
    pub first: Ipv4Addr,
    /// Last address of the range.
    pub last: Ipv4Addr,
    /// Router for the leaves (option 3).
    pub router: Ipv4Addr,
    /// Prefix length for option 1.
    pub prefix_len: u8,
}

/// The netmask of a prefix length (0..=32).
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    let bits = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    Ipv4Addr::from(bits)
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix_len: u8) -> bool {
    let m = u32::from(netmask(prefix_len));
    u32::from(a) & m == u32::from(b) & m
}

impl AddressPlan {
    /// Works out the plan for a link from the spine's address on it and the pool
    /// configured for it, if any. A pool, when given, wins over derivation.
    pub fn derive(spine: Option<SpineAddress>, pool: Option<&PoolSpec>) -> Result<Self, NoPlan> {
        if let Some(pool) = pool {
            return Self::from_pool(spine, pool);
        }
        let Some(spine) = spine else {
            return Err(NoPlan::NoAddress);
        };
        let a = u32::from(spine.address);
        match spine.prefix_len {
            31 => Ok(AddressPlan::PointToPoint {
                spine: spine.address,
                leaf: Ipv4Addr::from(a ^ 1),
                prefix_len: 31,
            }),
            30 => match a & 3 {
                1 => Ok(AddressPlan::PointToPoint {
                    spine: spine.address,
                    leaf: Ipv4Addr::from(a + 1),
                    prefix_len: 30,
                }),
                2 => Ok(AddressPlan::PointToPoint {
                    spine: spine.address,
                    leaf: Ipv4Addr::from(a - 1),
                    prefix_len: 30,
                }),
                _ => Err(NoPlan::BadSlash30 {
                    address: spine.address,
                }),
            },
            32 => Err(NoPlan::Unnumbered {
                address: spine.address,
            }),
            p => Err(NoPlan::NeedsPool { prefix_len: p }),
        }
    }

    fn from_pool(spine: Option<SpineAddress>, pool: &PoolSpec) -> Result<Self, NoPlan> {
        let bad = |why: String| NoPlan::BadPool {
            first: pool.first,
            last: pool.last,
            why,
        };
        if pool.prefix_len == 0 || pool.prefix_len > 30 {
            return Err(bad(format!(
                "prefix /{} leaves no room for hosts",
                pool.prefix_len
            )));
        }
        if u32::from(pool.first) > u32::from(pool.last) {
            return Err(bad("first address is after the last".into()));
        }
        let p = pool.prefix_len;
        if !same_subnet(pool.first, pool.last, p) || !same_subnet(pool.first, pool.router, p) {
            return Err(bad(format!(
                "range and router {} are not all inside one /{p}",
                pool.router
            )));
        }
        let m = u32::from(netmask(p));
        let net = u32::from(pool.first) & m;
        let bcast = net | !m;
        if u32::from(pool.first) == net || u32::from(pool.last) == bcast {
            return Err(bad(format!(
                "range includes the network or broadcast address of its /{p}"
            )));
        }
        let r = u32::from(pool.router);
        if r >= u32::from(pool.first) && r <= u32::from(pool.last) {
            return Err(bad(format!("router {} is inside the range", pool.router)));
        }
        // The spine's own address on the link is the server identifier; on an
        // unnumbered link that is the borrowed loopback address. Without one, the
        // router stands in (it is the spine in every design we serve).
        let server = spine.map(|s| s.address).unwrap_or(pool.router);
        Ok(AddressPlan::Pool(PoolPlan {
            server,
            router: pool.router,
            prefix_len: p,
            first: pool.first,
            last: pool.last,
        }))
    }

    /// The spine's address: server identifier (option 54) and reply source.
    pub fn server_id(&self) -> Ipv4Addr {
        match self {
            AddressPlan::PointToPoint { spine, .. } => *spine,
            AddressPlan::Pool(p) => p.server,
        }
    }

    /// Option 3 for the leaves.
    pub fn router(&self) -> Ipv4Addr {
        match self {
            AddressPlan::PointToPoint { spine, .. } => *spine,
            AddressPlan::Pool(p) => p.router,
        }
    }

    /// Option 1 for the leaves.
    pub fn netmask(&self) -> Ipv4Addr {
        netmask(self.prefix_len())
    }

    /// Prefix length given to the leaves.
    pub fn prefix_len(&self) -> u8 {
        match self {
            AddressPlan::PointToPoint { prefix_len, .. } => *prefix_len,
            AddressPlan::Pool(p) => p.prefix_len,
        }
    }

    /// Whether `addr` is an address this plan may give out.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        match self {
            AddressPlan::PointToPoint { leaf, .. } => *leaf == addr,
            AddressPlan::Pool(p) => {
                let a = u32::from(addr);
                a >= u32::from(p.first) && a <= u32::from(p.last)
            }
        }
    }

    /// Number of addresses the plan can give out.
    pub fn size(&self) -> u32 {
        match self {
            AddressPlan::PointToPoint { .. } => 1,
            AddressPlan::Pool(p) => u32::from(p.last) - u32::from(p.first) + 1,
        }
    }
}

impl fmt::Display for AddressPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressPlan::PointToPoint {
                spine,
                leaf,
                prefix_len,
            } => write!(f, "point-to-point {spine}/{prefix_len}, leaf {leaf}"),
            AddressPlan::Pool(p) => write!(
                f,
                "pool {}-{}/{} router {}",
                p.first, p.last, p.prefix_len, p.router
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(a: &str, p: u8) -> Option<SpineAddress> {
        Some(SpineAddress {
            address: a.parse().unwrap(),
            prefix_len: p,
        })
    }

    #[test]
    fn slash31_gives_the_other_address_either_way_round() {
        let p = AddressPlan::derive(sa("10.0.0.0", 31), None).unwrap();
        assert_eq!(
            p,
            AddressPlan::PointToPoint {
                spine: "10.0.0.0".parse().unwrap(),
                leaf: "10.0.0.1".parse().unwrap(),
                prefix_len: 31
            }
        );
        assert_eq!(p.netmask(), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(p.router(), Ipv4Addr::new(10, 0, 0, 0));
        let p = AddressPlan::derive(sa("10.0.0.3", 31), None).unwrap();
        assert!(p.contains("10.0.0.2".parse().unwrap()));
        assert_eq!(p.size(), 1);
    }

    #[test]
    fn slash30_gives_the_other_usable_host() {
        let p = AddressPlan::derive(sa("10.0.0.1", 30), None).unwrap();
        assert!(p.contains("10.0.0.2".parse().unwrap()));
        let p = AddressPlan::derive(sa("10.0.0.6", 30), None).unwrap();
        assert!(p.contains("10.0.0.5".parse().unwrap()));
        assert_eq!(p.netmask(), Ipv4Addr::new(255, 255, 255, 252));
        assert!(matches!(
            AddressPlan::derive(sa("10.0.0.4", 30), None),
            Err(NoPlan::BadSlash30 { .. })
        ));
        assert!(matches!(
            AddressPlan::derive(sa("10.0.0.7", 30), None),
            Err(NoPlan::BadSlash30 { .. })
        ));
    }

    #[test]
    fn wider_needs_a_pool_and_unnumbered_is_not_served() {
        assert_eq!(
            AddressPlan::derive(sa("10.0.7.1", 29), None),
            Err(NoPlan::NeedsPool { prefix_len: 29 })
        );
        assert_eq!(
            AddressPlan::derive(sa("192.0.2.1", 32), None),
            Err(NoPlan::Unnumbered {
                address: "192.0.2.1".parse().unwrap()
            })
        );
        assert_eq!(AddressPlan::derive(None, None), Err(NoPlan::NoAddress));
    }

    fn pool(first: &str, last: &str, router: &str, p: u8) -> PoolSpec {
        PoolSpec {
            first: first.parse().unwrap(),
            last: last.parse().unwrap(),
            router: router.parse().unwrap(),
            prefix_len: p,
        }
    }

    #[test]
    fn slash29_with_a_pool() {
        let spec = pool("10.0.7.2", "10.0.7.6", "10.0.7.1", 29);
        let p = AddressPlan::derive(sa("10.0.7.1", 29), Some(&spec)).unwrap();
        assert_eq!(p.size(), 5);
        assert_eq!(p.router(), Ipv4Addr::new(10, 0, 7, 1));
        assert_eq!(p.server_id(), Ipv4Addr::new(10, 0, 7, 1));
        assert!(p.contains("10.0.7.6".parse().unwrap()));
        assert!(!p.contains("10.0.7.7".parse().unwrap()));
        // Unnumbered with a pool: the borrowed address is the server identifier.
        let p = AddressPlan::derive(sa("192.0.2.1", 32), Some(&spec)).unwrap();
        assert_eq!(p.server_id(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.router(), Ipv4Addr::new(10, 0, 7, 1));
    }

    #[test]
    fn bad_pools_are_rejected_with_the_reason() {
        for (spec, why) in [
            (pool("10.0.7.6", "10.0.7.2", "10.0.7.1", 29), "after"),
            (pool("10.0.7.2", "10.0.8.6", "10.0.7.1", 29), "inside one"),
            (pool("10.0.7.0", "10.0.7.6", "10.0.7.1", 29), "network"),
            (
                pool("10.0.7.1", "10.0.7.6", "10.0.7.3", 29),
                "inside the range",
            ),
            (pool("10.0.7.1", "10.0.7.1", "10.0.7.2", 31), "no room"),
        ] {
            let err = AddressPlan::derive(None, Some(&spec)).unwrap_err();
            assert!(err.to_string().contains(why), "{err} should say {why}");
        }
    }
}
