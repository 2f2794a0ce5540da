//! What the DHCP core needs to know beyond the links: client classes and timers.

use std::net::Ipv4Addr;
use std::time::Duration;

/// Settings of the DHCP core. The agent builds this from its config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Classes in order; a client is answered by the first class whose prefix its
    /// option 60 starts with, and ignored when none matches.
    pub classes: Vec<ClientClass>,
    /// Lease time (option 51). T1 and T2 are 1/2 and 7/8 of it.
    pub lease_time: Duration,
    /// How long an OFFER holds its address for the client.
    pub offer_hold: Duration,
    /// How long a DECLINEd address is kept out of use.
    pub decline_quarantine: Duration,
    /// On a point-to-point link, how long the holder of the link's address must
    /// have been silent before another client (a replaced leaf) may take it.
    pub replace_after: Duration,
    /// Upper bound on OFFERs waiting for a REQUEST on one link; the oldest of
    /// that link goes first, so a flood on one link costs no other link an offer.
    pub max_pending_offers: usize,
    /// Packets answered per second for one client on one link; more are
    /// dropped and counted (a renewal flood costs the flooder only).
    pub client_packets_per_sec: u16,
    /// Whether giaddr and option 82 are honoured from any address. Off by
    /// default: the leaves are directly attached, and a relay field set by a leaf
    /// must not redirect the reply (to broadcast, to port 67, or to 127.0.0.1
    /// through ARP). Off, giaddr is still honoured on a pool link when it is a
    /// unicast address of that link's subnet, and never on a point-to-point link.
    pub trust_relay_agents: bool,
    /// Minimum time between two log events of the same kind for the same link
    /// (ignored clients, malformed packets, unserved links, NAKs per reason).
    pub log_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            classes: vec![ClientClass::arista(None)],
            lease_time: Duration::from_secs(86_400),
            offer_hold: Duration::from_secs(30),
            decline_quarantine: Duration::from_secs(600),
            replace_after: Duration::from_secs(30),
            max_pending_offers: 4096,
            client_packets_per_sec: 8,
            trust_relay_agents: false,
            log_interval: Duration::from_secs(60),
        }
    }
}

/// In a class's bootfile URL, the spine's address on the leaf's link.
pub const SERVER_PLACEHOLDER: &str = "{server}";

/// A class of clients, chosen by the start of their vendor class (option 60),
/// and the options they get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientClass {
    /// Name used in logs and status.
    pub name: String,
    /// Option 60 must start with this (case-sensitive, as EOS sends it).
    pub vendor_class_prefix: String,
    /// Option 67: a full URL (EOS turns a bare file name into a TFTP path).
    /// `{server}` in it stands for the spine's address on the leaf's link
    /// (see [`ClientClass::bootfile_for`]).
    pub bootfile_url: Option<String>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 42.
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 12, rendered by [`HostnameTemplate`].
    pub hostname: Option<HostnameTemplate>,
}

impl ClientClass {
    /// The default class: Arista switches in ZTP, with the given bootfile URL.
    pub fn arista(bootfile_url: Option<String>) -> Self {
        ClientClass {
            name: "arista".into(),
            vendor_class_prefix: "Arista".into(),
            bootfile_url,
            dns_servers: vec![],
            domain_name: None,
            ntp_servers: vec![],
            hostname: None,
        }
    }

    /// Option 67 on a link whose leaves reach the spine at `server` (the
    /// router they are given: the spine's own address on a /31 or /30, the
    /// pool's router): `{server}` in the URL becomes that address, so one
    /// class gives every link its own spine-served URL.
    pub fn bootfile_for(&self, server: Ipv4Addr) -> Option<String> {
        self.bootfile_url
            .as_ref()
            .map(|u| u.replace(SERVER_PLACEHOLDER, &server.to_string()))
    }

    /// Whether a client with this option 60 payload belongs to the class.
    pub fn matches(&self, vendor_class: &[u8]) -> bool {
        vendor_class.starts_with(self.vendor_class_prefix.as_bytes())
    }
}

/// A hostname template: `{link}`, `{serial}`, `{model}` and `{mac}` are replaced by
/// the link name, the leaf's serial and model from option 60, and its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostnameTemplate(String);

/// A template with an unknown `{placeholder}` or an unclosed brace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hostname template {template:?}: {why}")]
pub struct TemplateError {
    /// The template as given.
    pub template: String,
    /// What is wrong.
    pub why: String,
}

/// Values a hostname template can use.
#[derive(Debug, Clone, Copy)]
pub struct HostnameVars<'a> {
    /// The link name.
    pub link: &'a str,
    /// Serial from option 60.
    pub serial: Option<&'a str>,
    /// Model from option 60.
    pub model: Option<&'a str>,
    /// The client's MAC, `aa:bb:...`.
    pub mac: &'a str,
}

impl HostnameTemplate {
    const NAMES: [&'static str; 4] = ["link", "serial", "model", "mac"];

    /// Checks the template's placeholders.
    pub fn new(template: &str) -> Result<Self, TemplateError> {
        let err = |why: String| TemplateError {
            template: template.into(),
            why,
        };
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| err("unclosed '{'".into()))?;
            let name = &after[..close];
            if !Self::NAMES.contains(&name) {
                return Err(err(format!(
                    "unknown placeholder {{{name}}}; use {{link}}, {{serial}}, {{model}} or {{mac}}"
                )));
            }
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(err("'}' without '{'".into()));
        }
        Ok(HostnameTemplate(template.into()))
    }

    /// Renders the hostname, or `None` when a value it uses is unknown (a leaf
    /// that sent no serial gets no option 12 rather than a wrong name).
    ///
    /// The result is always a valid DNS label: letters, digits and '-', not
    /// starting or ending with '-', at most 63 characters. Characters that are not
    /// letters, digits or '-' become '-'. When that changed a value the leaf sent
    /// (serial, model), or the label had to be cut, a hash of the unchanged text
    /// is appended (`-` and 6 hex digits): serials that differ only in
    /// punctuation, or only after the 56th character, still get different names.
    pub fn render(&self, vars: HostnameVars<'_>) -> Option<String> {
        let mut raw = String::new();
        let mut lossy = false;
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find('{') {
            raw.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}')?;
            let (value, from_leaf) = match &after[..close] {
                "link" => (Some(vars.link), false),
                "serial" => (vars.serial, true),
                "model" => (vars.model, true),
                "mac" => (Some(vars.mac), false),
                _ => (None, false),
            };
            let value = value?;
            if from_leaf && !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                lossy = true;
            }
            raw.push_str(value);
            rest = &after[close + 1..];
        }
        raw.push_str(rest);
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let clean = clean.trim_matches('-');
        if clean.is_empty() {
            return None;
        }
        const MAX: usize = 63;
        if !lossy && clean.len() <= MAX {
            return Some(clean.to_string());
        }
        let tag = format!("{:06x}", fnv1a(raw.as_bytes()) & 0xff_ffff);
        let keep = clean[..clean.len().min(MAX - tag.len() - 1)].trim_end_matches('-');
        Some(if keep.is_empty() {
            tag
        } else {
            format!("{keep}-{tag}")
        })
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// FNV-1a, 64 bit: a stable hash (the same name on every run and build).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_template_renders_and_sanitizes() {
        let t = HostnameTemplate::new("leaf-{serial}-{link}").unwrap();
        let v = HostnameVars {
            link: "Ethernet49/1",
            serial: Some("JPE123"),
            model: None,
            mac: "00:1c:73:00:00:01",
        };
        assert_eq!(t.render(v).as_deref(), Some("leaf-JPE123-Ethernet49-1"));
        let t = HostnameTemplate::new("{model}").unwrap();
        assert_eq!(t.render(v), None);
    }

    /// Issue 11 item 13: long serials and serials that differ only in
    /// punctuation give valid, distinct labels.
    #[test]
    fn hostname_is_a_valid_label_and_distinct_serials_stay_distinct() {
        let t = HostnameTemplate::new("leaf-{serial}").unwrap();
        let render = |serial: &str| {
            t.render(HostnameVars {
                link: "et1",
                serial: Some(serial),
                model: None,
                mac: "00:1c:73:00:00:01",
            })
            .unwrap()
        };
        let long = "S".repeat(200);
        for name in [
            render(&long),
            render("JPE.1"),
            render("JPE_1"),
            render("--"),
        ] {
            assert!(name.len() <= 63, "{name}");
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{name}"
            );
        }
        assert_ne!(render("JPE.1"), render("JPE_1"));
        assert_ne!(render(&long), render(&format!("{long}X")));
        assert_eq!(render("JPE1"), "leaf-JPE1");
    }

    #[test]
    fn hostname_template_rejects_unknown_placeholders() {
        assert!(HostnameTemplate::new("{serail}")
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder {serail}"));
        assert!(HostnameTemplate::new("a{link").is_err());
        assert!(HostnameTemplate::new("a}b").is_err());
    }

    #[test]
    fn class_matches_on_prefix() {
        let c = ClientClass::arista(None);
        assert!(c.matches(b"Arista;DCS-7050S-64;01.23;JPE12221671"));
        assert!(!c.matches(b"MSFT 5.0"));
        assert!(!c.matches(b""));
    }

    #[test]
    fn server_in_the_bootfile_url_is_the_links_spine_address() {
        let c = ClientClass::arista(Some("http://{server}:50080/ztp/bootstrap".into()));
        assert_eq!(
            c.bootfile_for(Ipv4Addr::new(10, 0, 3, 0)).as_deref(),
            Some("http://10.0.3.0:50080/ztp/bootstrap")
        );
        let fixed = ClientClass::arista(Some("http://10.10.10.11/b".into()));
        assert_eq!(
            fixed.bootfile_for(Ipv4Addr::new(10, 0, 3, 0)).as_deref(),
            Some("http://10.10.10.11/b")
        );
        assert_eq!(
            ClientClass::arista(None).bootfile_for(Ipv4Addr::LOCALHOST),
            None
        );
    }
}
