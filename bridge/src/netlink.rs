//! Requests over rtnetlink: the bridge, and dumps of links and addresses.
//!
//! Requests and their replies are a good fit for rtnetlink's connection (it
//! matches replies to requests and handles multi-part dumps); events are not,
//! see `events`.

use std::{fmt, net::IpAddr, net::Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::{
    packet_route::{address::AddressMessage, link::LinkMessage, AddressFamily},
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec,
};
use tracing::debug;

use crate::{
    parse::{parse_ipv4_address, parse_link, ParsedLink},
    BridgeError, Ipv4AddrInfo, LinkInfo,
};

/// The bridge the ZTPServer VM's tap joins, as configured in `[bridge]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Kernel name, at most 15 bytes (`IFNAMSIZ` - 1), e.g. `br0`.
    pub name: String,
    /// The VM's default gateway, e.g. 10.10.10.1.
    pub address: Ipv4Addr,
    /// Prefix length of `address`, 1..=32.
    pub prefix_len: u8,
    /// MTU to enforce; `None` leaves whatever the bridge has (1500 when new).
    pub mtu: Option<u32>,
}

impl BridgeSpec {
    fn validate(&self) -> Result<(), BridgeError> {
        let invalid = |reason: String| BridgeError::InvalidSpec {
            link: self.name.clone(),
            reason,
        };
        let name = &self.name;
        if name.is_empty() || name.len() > 15 {
            return Err(invalid(format!(
                "a link name has 1 to 15 bytes, this one has {}",
                name.len()
            )));
        }
        if name == "."
            || name == ".."
            || name
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace())
        {
            return Err(invalid(
                "a link name cannot be \".\" or \"..\" or contain '/', ':' or whitespace".into(),
            ));
        }
        if !(1..=32).contains(&self.prefix_len) {
            return Err(invalid(format!(
                "prefix length {} is not in 1..=32",
                self.prefix_len
            )));
        }
        let a = self.address;
        if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
            return Err(invalid(format!("{a} cannot be an interface address")));
        }
        Ok(())
    }
}

/// What [`Netlink::ensure_bridge`] did; all `false` on a second run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeReport {
    /// The bridge's name.
    pub name: String,
    /// Its interface index (after creation, if it was created).
    pub index: u32,
    /// The bridge did not exist and was created.
    pub created: bool,
    /// Its MTU differed from the spec and was set.
    pub mtu_changed: bool,
    /// It was administratively down and was brought up.
    pub brought_up: bool,
    /// The spec's address was missing and was added.
    pub address_added: bool,
    /// The bridge's MTU now, as set or as the kernel reported it.
    pub mtu: Option<u32>,
    /// Its MTU before this call (equal to `mtu` unless `mtu_changed`).
    pub mtu_before: Option<u32>,
    /// The address that is now on the bridge.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
}

impl BridgeReport {
    /// Whether anything on the system changed.
    pub fn changed(&self) -> bool {
        self.created || self.mtu_changed || self.brought_up || self.address_added
    }
}

impl fmt::Display for BridgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bridge {} (ifindex {}): ", self.name, self.index)?;
        if !self.changed() {
            write!(f, "already up with {}/{}", self.address, self.prefix_len)?;
            if let Some(mtu) = self.mtu {
                write!(f, ", mtu {mtu}")?;
            }
            return f.write_str("; nothing changed");
        }
        let mut steps = Vec::new();
        if self.created {
            steps.push("created".to_owned());
        }
        if self.mtu_changed {
            let now = self.mtu.map_or_else(|| "?".to_owned(), |m| m.to_string());
            steps.push(match self.mtu_before {
                Some(old) => format!("mtu {old} -> {now}"),
                None => format!("mtu set to {now}"),
            });
        }
        if self.brought_up {
            steps.push("brought up".to_owned());
        }
        if self.address_added {
            steps.push(format!("added {}/{}", self.address, self.prefix_len));
        }
        f.write_str(&steps.join(", "))
    }
}

/// A handle on rtnetlink in the calling thread's network namespace. Cheap to
/// clone; the connection task stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens an rtnetlink socket and spawns its connection task on the
    /// current tokio runtime (which must be running: the task answers every
    /// request).
    pub fn connect() -> Result<Netlink, BridgeError> {
        const OP: &str = "open an rtnetlink connection";
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| BridgeError::NoRuntime { op: OP })?;
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|e| BridgeError::socket(OP, e))?;
        runtime.spawn(connection);
        Ok(Netlink { handle })
    }

    /// Makes the bridge exist, have the spec's MTU, be up and carry the
    /// spec's address; changes only what differs and reports it.
    ///
    /// A link of that name that is not a bridge is an error, and then nothing
    /// at all is changed. Ports (the VM's `vnet0`) and other addresses on the
    /// bridge are left alone. A bridge created concurrently by someone else
    /// is adopted, not an error.
    pub async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<BridgeReport, BridgeError> {
        spec.validate()?;
        let name = spec.name.as_str();

        let mut created = false;
        let link = match self.link_by_name(name).await? {
            Some(link) => link,
            None => {
                created = self.create_bridge(name).await?;
                self.link_by_name(name)
                    .await?
                    .ok_or_else(|| BridgeError::Vanished {
                        link: name.to_owned(),
                        op: "bridge creation".into(),
                    })?
            }
        };
        if link.info.kind.as_deref() != Some("bridge") {
            return Err(BridgeError::NotABridge {
                link: name.to_owned(),
                kind: link.info.kind,
            });
        }
        let index = link.info.index;

        let mtu_changed = match spec.mtu {
            Some(mtu) if link.mtu != Some(mtu) => {
                let op = format!("set mtu {mtu}");
                debug!(bridge = name, mtu, "setting bridge mtu");
                self.set_link(
                    name,
                    &op,
                    LinkUnspec::new_with_index(index).mtu(mtu).build(),
                )
                .await?;
                true
            }
            _ => false,
        };

        let brought_up = if link.info.up {
            false
        } else {
            debug!(bridge = name, "bringing bridge up");
            self.set_link(
                name,
                "bring up",
                LinkUnspec::new_with_index(index).up().build(),
            )
            .await?;
            true
        };

        let address_added = self
            .ensure_address(name, index, spec.address, spec.prefix_len)
            .await?;

        Ok(BridgeReport {
            name: name.to_owned(),
            index,
            created,
            mtu_changed,
            brought_up,
            address_added,
            mtu: spec.mtu.or(link.mtu),
            mtu_before: link.mtu,
            address: spec.address,
            prefix_len: spec.prefix_len,
        })
    }

    /// Every link in the namespace, ordered by index.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, BridgeError> {
        const OP: &str = "list links";
        let mut stream = std::pin::pin!(self.handle.link().get().execute());
        let mut links = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| BridgeError::from_rtnetlink(OP, None, e))?
        {
            links.extend(parse_link(&msg).map(|l| l.info));
        }
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    /// Every IPv4 address in the namespace, ordered by interface index (the
    /// kernel's order within one interface: primaries first).
    pub async fn ipv4_addresses(&self) -> Result<Vec<Ipv4AddrInfo>, BridgeError> {
        let mut addresses: Vec<Ipv4AddrInfo> = self
            .ipv4_address_messages("list IPv4 addresses", None)
            .await?
            .iter()
            .filter_map(parse_ipv4_address)
            .collect();
        addresses.sort_by_key(|a| a.index);
        Ok(addresses)
    }

    async fn ipv4_address_messages(
        &self,
        op: &str,
        link: Option<(&str, u32)>,
    ) -> Result<Vec<AddressMessage>, BridgeError> {
        let mut request = self.handle.address().get();
        // Ask the kernel for IPv4 only instead of filtering a full dump.
        request.message_mut().header.family = AddressFamily::Inet;
        if let Some((_, index)) = link {
            request = request.set_link_index_filter(index);
        }
        let mut stream = std::pin::pin!(request.execute());
        let mut messages = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| BridgeError::from_rtnetlink(op, link.map(|l| l.0), e))?
        {
            messages.push(msg);
        }
        Ok(messages)
    }

    /// `None` if no link has that name (`ENODEV`).
    async fn link_by_name(&self, name: &str) -> Result<Option<ParsedLink>, BridgeError> {
        const OP: &str = "look up link";
        let mut stream = std::pin::pin!(self.handle.link().get().match_name(name).execute());
        let msg: LinkMessage = match stream.try_next().await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => {
                return Ok(None)
            }
            Err(e) => return Err(BridgeError::from_rtnetlink(OP, Some(name), e)),
        };
        // The kernel also resolves alternative names (`ip link property add
        // altname`), so the link found may be primarily named otherwise; it
        // still holds the name, which is what matters for creating one.
        parse_link(&msg)
            .map(Some)
            .ok_or_else(|| BridgeError::Protocol {
                op: OP.into(),
                link: Some(name.to_owned()),
                detail: "the kernel's link message has no name".into(),
            })
    }

    /// Creates the bridge down and with defaults, so the remaining steps run
    /// the same way for a new and an existing bridge. `false` if it appeared
    /// meanwhile (`EEXIST`): whoever made it, it is then checked like any
    /// existing link.
    async fn create_bridge(&self, name: &str) -> Result<bool, BridgeError> {
        debug!(bridge = name, "creating bridge");
        let msg = LinkMessageBuilder::<LinkBridge>::new(name).build();
        match self.handle.link().add(msg).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::EEXIST => {
                Ok(false)
            }
            Err(e) => Err(BridgeError::from_rtnetlink("create bridge", Some(name), e)),
        }
    }

    async fn set_link(&self, name: &str, op: &str, msg: LinkMessage) -> Result<(), BridgeError> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| BridgeError::from_rtnetlink(op, Some(name), e))
    }

    /// Adds `address/prefix_len` unless that exact pair is already on the
    /// link; other addresses, including the same address with another prefix
    /// length, are left alone.
    async fn ensure_address(
        &self,
        name: &str,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<bool, BridgeError> {
        let present = self
            .ipv4_address_messages("list addresses", Some((name, index)))
            .await?
            .iter()
            .filter_map(parse_ipv4_address)
            .any(|a| a.index == index && a.address == address && a.prefix_len == prefix_len);
        if present {
            return Ok(false);
        }
        debug!(bridge = name, %address, prefix_len, "adding bridge address");
        let op = format!("add address {address}/{prefix_len}");
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(address), prefix_len)
            .execute()
            .await
        {
            Ok(()) => Ok(true),
            // Added meanwhile by someone else: present, which is the goal.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::EEXIST => {
                Ok(false)
            }
            Err(e) => Err(BridgeError::from_rtnetlink(op, Some(name), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BridgeSpec {
        BridgeSpec {
            name: "br0".into(),
            address: Ipv4Addr::new(10, 10, 10, 1),
            prefix_len: 24,
            mtu: None,
        }
    }

    #[test]
    fn valid_spec_passes() {
        spec().validate().expect("valid");
    }

    #[test]
    fn invalid_specs_are_rejected_with_reason() {
        let cases: Vec<(BridgeSpec, &str)> = vec![
            (
                BridgeSpec {
                    name: String::new(),
                    ..spec()
                },
                "1 to 15 bytes",
            ),
            (
                BridgeSpec {
                    name: "a-very-long-bridge".into(),
                    ..spec()
                },
                "1 to 15 bytes",
            ),
            (
                BridgeSpec {
                    name: "br/0".into(),
                    ..spec()
                },
                "'/'",
            ),
            (
                BridgeSpec {
                    name: "br 0".into(),
                    ..spec()
                },
                "whitespace",
            ),
            (
                BridgeSpec {
                    prefix_len: 0,
                    ..spec()
                },
                "prefix length 0",
            ),
            (
                BridgeSpec {
                    prefix_len: 33,
                    ..spec()
                },
                "prefix length 33",
            ),
            (
                BridgeSpec {
                    address: Ipv4Addr::UNSPECIFIED,
                    ..spec()
                },
                "0.0.0.0 cannot",
            ),
            (
                BridgeSpec {
                    address: Ipv4Addr::new(224, 0, 0, 1),
                    ..spec()
                },
                "224.0.0.1 cannot",
            ),
        ];
        for (spec, want) in cases {
            let err = spec
                .validate()
                .expect_err(&format!("{spec:?} must be rejected"));
            assert!(matches!(err, BridgeError::InvalidSpec { .. }), "{err:?}");
            assert!(
                err.to_string().contains(want),
                "{err} should mention {want}"
            );
        }
    }

    fn report() -> BridgeReport {
        BridgeReport {
            name: "br0".into(),
            index: 3,
            created: false,
            mtu_changed: false,
            brought_up: false,
            address_added: false,
            mtu: Some(1500),
            mtu_before: Some(1500),
            address: Ipv4Addr::new(10, 10, 10, 1),
            prefix_len: 24,
        }
    }

    #[test]
    fn unchanged_report_reads_as_one_log_line() {
        let r = report();
        assert!(!r.changed());
        assert_eq!(
            r.to_string(),
            "bridge br0 (ifindex 3): already up with 10.10.10.1/24, mtu 1500; nothing changed"
        );
    }

    #[test]
    fn changed_report_lists_every_step() {
        let r = BridgeReport {
            created: true,
            mtu_changed: true,
            brought_up: true,
            address_added: true,
            mtu: Some(9000),
            ..report()
        };
        assert!(r.changed());
        assert_eq!(
            r.to_string(),
            "bridge br0 (ifindex 3): created, mtu 1500 -> 9000, brought up, added 10.10.10.1/24"
        );
    }
}
