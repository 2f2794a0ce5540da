//! Typed config values. Each type is made only by its `parse`, which checks
//! everything the value will later be used for (a file name, a FastCli argument,
//! a syslog header, a DHCP option), so that code holding one never checks again.
//!
//! **Invariant:** no string type here can hold a control character: values end
//! up in FastCli commands, syslog lines, DHCP options and the operator's terminal.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Deref;
use std::time::Duration;

/// Defines a checked string type: `parse` is the only way in; it reads as `&str`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `s`; the error says what is wrong and what to write instead.
            pub fn parse(s: &str) -> Result<Self, String> {
                $check(s).map(|()| $name(s.to_string()))
            }

            /// The checked text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Debug as the plain string, so messages read `"Ethernet3"`, not `Name("Ethernet3")`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// Rejects control characters (newline, NUL, escape sequences...).
pub(crate) fn no_control(s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{s:?} contains the control character {:?}: write plain text",
            c
        )),
        None => Ok(()),
    }
}

/// Printable ASCII without spaces, 1 to `max` characters.
pub(crate) fn token(s: &str, max: usize, what: &str) -> Result<(), String> {
    no_control(s)?;
    if s.is_empty() || s.len() > max || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "{s:?}: {what} is 1 to {max} printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- durations

/// Parses `500ms`, `2s`, `10m`, `1h`, `1d`, or a sum like `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. \"2s\", \"10m\", \"1d\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "{s:?} is not a duration; write e.g. \"2s\", \"10m\", \"1d\""
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{s:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs_per = match unit {
            "ms" => None,
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "" => return Err(format!("{s:?} has no unit; write e.g. \"{n}s\"")),
            u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m, h or d)")),
        };
        let d = match secs_per {
            None => Duration::from_millis(n),
            Some(k) => n
                .checked_mul(k)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{s:?}: number too large"))?,
        };
        total = total
            .checked_add(d)
            .ok_or_else(|| format!("{s:?}: number too large"))?;
    }
    Ok(total)
}

/// The shortest string form [`parse_duration`] reads back: `1d`, `90m`, `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(86_400_000) && ms > 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

// ---------------------------------------------------------------- addresses

/// An IPv4 address with a prefix length of 1 to 32, e.g. `10.10.10.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// Parses `address/prefix`.
    pub fn parse(s: &str) -> Result<Ipv4Cidr, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: write address/prefix, e.g. \"10.10.10.1/24\""))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix_len: u8 = p
            .parse()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .ok_or_else(|| format!("prefix {p:?} must be 1 to 32"))?;
        Ok(Ipv4Cidr { addr, prefix_len })
    }

    /// `addr/prefix_len`, if the prefix length is 1 to 32.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Cidr> {
        (1..=32)
            .contains(&prefix_len)
            .then_some(Ipv4Cidr { addr, prefix_len })
    }

    /// The address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Whether `ip` is in this address's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = mask(self.prefix_len);
        u32::from(ip) & m == u32::from(self.addr) & m
    }

    /// The subnet, e.g. `10.10.10.0/24` for `10.10.10.1/24`.
    pub fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            addr: Ipv4Addr::from(u32::from(self.addr) & mask(self.prefix_len)),
            prefix_len: self.prefix_len,
        }
    }

    /// The subnet's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix_len))
    }

    /// The prefix length, 1 to 32.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    }
}

/// A DHCP pool for one link: `first..=last`, the router (option 3) and the prefix
/// length (option 1). Made by [`Pool::new`], which checks what the DHCP core
/// needs: room for hosts, one subnet, no network or broadcast address, router
/// outside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    first: Ipv4Addr,
    last: Ipv4Addr,
    router: Ipv4Addr,
    prefix_len: u8,
}

impl Pool {
    /// Checks a pool given as `range` (`first-last`), router and prefix length.
    pub fn new(range: &str, router: Ipv4Addr, prefix_len: u8) -> Result<Pool, String> {
        let (a, b) = range.split_once('-').ok_or_else(|| {
            format!("{range:?}: write the range as \"first-last\", e.g. \"10.0.7.2-10.0.7.6\"")
        })?;
        let addr = |s: &str| -> Result<Ipv4Addr, String> {
            s.trim()
                .parse()
                .map_err(|_| format!("{:?} is not an IPv4 address", s.trim()))
        };
        let (first, last) = (addr(a)?, addr(b)?);
        let bad = |why: String| format!("pool {first}-{last}: {why}");
        if prefix_len == 0 || prefix_len > 30 {
            return Err(bad(format!(
                "prefix /{prefix_len} leaves no room for hosts"
            )));
        }
        if u32::from(first) > u32::from(last) {
            return Err(bad("first address is after the last".into()));
        }
        let m = mask(prefix_len);
        let same = |x: Ipv4Addr, y: Ipv4Addr| u32::from(x) & m == u32::from(y) & m;
        if !same(first, last) || !same(first, router) {
            return Err(bad(format!(
                "range and router {router} are not all inside one /{prefix_len}"
            )));
        }
        let net = u32::from(first) & m;
        if u32::from(first) == net || u32::from(last) == net | !m {
            return Err(bad(format!(
                "range includes the network or broadcast address of its /{prefix_len}"
            )));
        }
        if (u32::from(first)..=u32::from(last)).contains(&u32::from(router)) {
            return Err(bad(format!("router {router} is inside the range")));
        }
        Ok(Pool {
            first,
            last,
            router,
            prefix_len,
        })
    }

    /// First address of the range.
    pub fn first(&self) -> Ipv4Addr {
        self.first
    }
    /// Last address of the range.
    pub fn last(&self) -> Ipv4Addr {
        self.last
    }
    /// Router for the leaves (option 3).
    pub fn router(&self) -> Ipv4Addr {
        self.router
    }
    /// Prefix length for option 1, 1 to 30.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    /// The range as written in the config: `first-last`.
    pub fn range(&self) -> String {
        format!("{}-{}", self.first, self.last)
    }
}

// ---------------------------------------------------------------- URLs

fn check_bootfile_url(u: &str) -> Result<(), String> {
    let rest = ["http://", "https://", "tftp://"]
        .iter()
        .find_map(|s| u.strip_prefix(s));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => {
            if u.len() > 255 {
                Err(format!(
                    "{} characters: option 67 holds at most 255",
                    u.len()
                ))
            } else if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(format!("{u:?} contains white space"))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "{u:?} is not a full URL (http://, https:// or tftp:// and a host): EOS turns a bare \
             file name into tftp://<dhcp-server>/<file>"
        )),
    }
}

checked_string!(
    /// Option 67: a full `http://`, `https://` or `tftp://` URL of at most 255
    /// characters, without white space.
    BootfileUrl,
    check_bootfile_url
);

fn check_eapi_url(u: &str) -> Result<(), String> {
    let rest = ["unix:/", "http://", "https://"]
        .iter()
        .find_map(|s| u.strip_prefix(s));
    let ok = rest.is_some_and(|r| !r.is_empty() || u.starts_with("unix:/"))
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{u:?}: use \"unix:/var/run/command-api.sock\", \"http://localhost:8080/command-api\" or an https:// URL"
        ))
    }
}

checked_string!(
    /// How to reach eAPI: `unix:/PATH`, `http://...` or `https://...`, no white space.
    EapiUrl,
    check_eapi_url
);

// ---------------------------------------------------------------- names

fn check_glob(g: &str) -> Result<(), String> {
    no_control(g)?;
    if g.is_empty() {
        return Err("empty interface pattern".into());
    }
    if g.len() > 64 {
        return Err(format!("{g:?}: at most 64 characters"));
    }
    if g.chars().any(|c| c.is_whitespace() || "[]{}".contains(c)) {
        return Err(format!(
            "{g:?}: only * and ? are wildcards; no spaces, [ ] or {{ }}"
        ));
    }
    Ok(())
}

checked_string!(
    /// An EOS interface name or glob (`*` any run, `?` one character), e.g.
    /// `Ethernet*`; matched ignoring case, as EOS does.
    InterfaceGlob,
    check_glob
);

impl InterfaceGlob {
    /// Whether `name` matches this pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(&self.0, name)
    }
}

/// Whether `name` matches glob `pattern` (`*` any run, `?` one character),
/// ignoring case as EOS does for interface names.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Checks one EOS interface name: letters (and `-`), then a number with
/// optional `/` and `.` parts: `Ethernet3`, `Ethernet49/1`, `Port-Channel10`,
/// `Ethernet1/1.100`. No globs, spaces or control characters.
pub fn check_eos_interface(s: &str) -> Result<(), String> {
    no_control(s)?;
    let letters = s
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
        .unwrap_or(s.len());
    let (kind, number) = s.split_at(letters);
    let ok = s.len() <= 64
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && number.starts_with(|c: char| c.is_ascii_digit())
        && number.ends_with(|c: char| c.is_ascii_digit())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || "/.".contains(c))
        && !number.contains("//")
        && !number.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an EOS interface name: write one name like \"Ethernet3\" or \"Ethernet49/1\" (no globs)"
        ))
    }
}

checked_string!(
    /// One EOS interface name, e.g. `Ethernet3`, `Ethernet49/1` (see [`check_eos_interface`]).
    EosInterface,
    check_eos_interface
);

fn check_vm_name(s: &str) -> Result<(), String> {
    no_control(s)?;
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: 1 to 32 letters, digits, '_' or '-', starting with a letter (it is an EOS and a libvirt name, passed to FastCli)"
        ))
    }
}

checked_string!(
    /// An EOS `virtual-machine` name: 1 to 32 of `[A-Za-z0-9_-]`, starting with a
    /// letter. It is handed to FastCli (`virtual-machine NAME restart`), so
    /// nothing else may get through.
    VmName,
    check_vm_name
);

fn check_leaf_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a leaf name is 1 to 63 letters, digits, '-', '_' or '.', starting with a \
             letter or digit, without \"..\" (it names the file <configs>/<name>.cfg)"
        ))
    }
}

checked_string!(
    /// A leaf's name: a hostname label `[A-Za-z0-9][A-Za-z0-9-_.]{0,62}` without
    /// `..`; safe as the file name `<ztp.configs>/<name>.cfg`.
    LeafName,
    check_leaf_name
);

fn check_linux_ifname(s: &str) -> Result<(), String> {
    no_control(s)?;
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c.is_whitespace() || c == '/' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a Linux interface name has 1 to 15 characters, no spaces, '/' or ':'"
        ))
    }
}

checked_string!(
    /// A Linux interface name (1 to 15 characters, no white space, `/` or `:`).
    LinuxIfName,
    check_linux_ifname
);

fn check_domain_name(s: &str) -> Result<(), String> {
    no_control(s)?;
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a domain name is dot-separated labels of letters, digits, '-' or '_', at most 255 characters"
        ))
    }
}

checked_string!(
    /// Option 15: a DNS domain name.
    DomainName,
    check_domain_name
);

fn check_syslog_tag(s: &str) -> Result<(), String> {
    no_control(s)?;
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a syslog tag is 1 to 32 letters, digits, '-', '_' or '.'"
        ))
    }
}

checked_string!(
    /// The syslog tag (RFC 3164 TAG): 1 to 32 of `[A-Za-z0-9._-]`.
    SyslogTag,
    check_syslog_tag
);

fn check_vendor_class(s: &str) -> Result<(), String> {
    no_control(s)?;
    if s.is_empty() {
        return Err("must not be empty (it would answer every DHCP client on the link)".into());
    }
    if s.len() > 255 {
        return Err("option 60 holds at most 255 characters".into());
    }
    Ok(())
}

checked_string!(
    /// An option 60 prefix: 1 to 255 characters, no control characters.
    VendorClass,
    check_vendor_class
);

fn check_label(s: &str) -> Result<(), String> {
    no_control(s)?;
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{s:?}: 1 to 64 characters"));
    }
    Ok(())
}

checked_string!(
    /// A short name shown in logs and status (a client class): 1 to 64
    /// characters, no control characters.
    Label,
    check_label
);

fn check_eapi_user(s: &str) -> Result<(), String> {
    token(s, 64, "an eAPI user")?;
    if s.contains(':') {
        return Err(format!(
            "{s:?}: HTTP basic authentication does not allow ':' in a user name"
        ));
    }
    Ok(())
}

checked_string!(
    /// An eAPI user for http(s) basic authentication: printable ASCII, no spaces or ':'.
    EapiUser,
    check_eapi_user
);

fn check_log_level(s: &str) -> Result<(), String> {
    no_control(s)?;
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_=,:.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?}: write a level (error, warn, info, debug, trace) or a filter like \"ztps_dhcp=debug,info\""
        ))
    }
}

checked_string!(
    /// A log level or `RUST_LOG`-style filter: `info`, `ztps_dhcp=debug,info`.
    LogLevel,
    check_log_level
);

fn check_hostname_template(t: &str) -> Result<(), String> {
    no_control(t)?;
    if t.is_empty() || t.len() > 255 {
        return Err("a hostname template has 1 to 255 characters".into());
    }
    if t.chars().any(char::is_whitespace) {
        return Err(format!("{t:?}: no spaces in a hostname"));
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("unclosed '{'")?;
        let name = &after[..close];
        if !HostnameTemplate::PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; use {{link}}, {{serial}}, {{model}} or {{mac}}"
            ));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("'}' without '{'".into());
    }
    Ok(())
}

checked_string!(
    /// Option 12 template: `{link}`, `{serial}`, `{model}` and `{mac}` are
    /// replaced per leaf, e.g. `leaf-{serial}`. No spaces or control characters.
    HostnameTemplate,
    check_hostname_template
);

impl HostnameTemplate {
    /// The placeholders a template may use.
    pub const PLACEHOLDERS: [&'static str; 4] = ["link", "serial", "model", "mac"];
}

/// A syslog facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facility {
    /// `user` (1).
    User,
    /// `daemon` (3).
    Daemon,
    /// `syslog` (5).
    Syslog,
    /// `local0`..`local7` (16..23); the number is 0 to 7.
    Local(LocalN),
}

/// The N of `localN`: 0 to 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalN(u8);

impl Facility {
    /// Parses `local0`..`local7`, `daemon`, `user` or `syslog`.
    pub fn parse(s: &str) -> Result<Facility, String> {
        let f = match s {
            "user" => Facility::User,
            "daemon" => Facility::Daemon,
            "syslog" => Facility::Syslog,
            _ => match s.strip_prefix("local").and_then(|n| n.parse::<u8>().ok()) {
                Some(n) if n <= 7 && s.len() == 6 => Facility::Local(LocalN(n)),
                _ => return Err(format!("{s:?}: use local0..local7, daemon, user or syslog")),
            },
        };
        Ok(f)
    }

    /// The syslog facility code.
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Syslog => 5,
            Facility::Local(LocalN(n)) => 16 + n,
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Facility::User => f.write_str("user"),
            Facility::Daemon => f.write_str("daemon"),
            Facility::Syslog => f.write_str("syslog"),
            Facility::Local(LocalN(n)) => write!(f, "local{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("99999999999999999999d")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("999999999999999999d")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(format_duration(Duration::from_secs(86400)), "1d");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
    }

    #[test]
    fn globs() {
        let g = |s: &str| InterfaceGlob::parse(s).unwrap();
        assert!(g("Ethernet*").matches("Ethernet49/1"));
        assert!(g("ethernet?").matches("Ethernet3"));
        assert!(!g("Ethernet?").matches("Ethernet13"));
        assert!(g("*").matches("Vlan100"));
        assert!(g("Ethernet4*/1").matches("Ethernet49/1"));
        assert!(!g("Ethernet4*/1").matches("Ethernet49/2"));
        assert!(InterfaceGlob::parse("Ethernet[1-4]").is_err());
        assert!(InterfaceGlob::parse("Ethernet1\n").is_err());
        assert_eq!(format!("{:?}", g("Ethernet5")), "\"Ethernet5\"");
    }

    #[test]
    fn eos_interface_names() {
        for ok in [
            "Ethernet3",
            "Ethernet49/1",
            "Port-Channel10",
            "Ethernet1/1.100",
        ] {
            assert!(EosInterface::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Ethernet*",
            "Ethernet",
            "3",
            "Ethernet 3",
            "Ethernet3\n",
            "Ethernet3/",
            "Ethernet3//1",
            "Ethernet3;reload",
        ] {
            assert!(EosInterface::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vm_names_are_what_eos_accepts_and_nothing_a_shell_would_read() {
        assert!(VmName::parse("ztps").is_ok());
        assert!(VmName::parse("ztps_vm-2").is_ok());
        for bad in [
            "",
            "ztps\nreload now",
            "ztps; bash rm -rf /mnt/flash",
            "ztps vm",
            "2ztps",
            "z$(x)",
            "abcdefghijklmnopqrstuvwxyzabcdefg",
        ] {
            assert!(VmName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn leaf_names_are_safe_file_names() {
        for ok in ["leaf3", "leaf-3.dc1", "L_3", "3leaf"] {
            assert!(LeafName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "a..b", "../etc", "a/b", "leaf\0", "-leaf", "leaf 3",
        ] {
            assert!(LeafName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(LeafName::parse("leaf3").unwrap().to_string(), "leaf3");
    }

    #[test]
    fn texts_reject_control_characters() {
        assert!(SyslogTag::parse("ZTPS\nx").is_err());
        assert!(SyslogTag::parse("ZT PS").is_err());
        assert!(DomainName::parse("example.com\r").is_err());
        assert!(DomainName::parse("example.com").is_ok());
        assert!(HostnameTemplate::parse("leaf-{serial}\n").is_err());
        assert!(HostnameTemplate::parse("leaf-{serial}").is_ok());
        assert!(HostnameTemplate::parse("leaf-{sn}").is_err());
        assert!(EapiUser::parse("admin\u{1b}[2J").is_err());
        assert!(EapiUser::parse("ad:min").is_err());
        assert!(VendorClass::parse("Arista\0").is_err());
        assert!(Label::parse("a\tb").is_err());
        assert!(LogLevel::parse("info\n").is_err());
        assert!(LinuxIfName::parse("br0\n").is_err());
    }

    #[test]
    fn facilities() {
        assert_eq!(Facility::parse("local0").unwrap().code(), 16);
        assert_eq!(Facility::parse("local7").unwrap().code(), 23);
        assert_eq!(Facility::parse("daemon").unwrap().code(), 3);
        assert!(Facility::parse("local8").is_err());
        assert!(Facility::parse("local07").is_err());
        assert_eq!(Facility::parse("local3").unwrap().to_string(), "local3");
    }

    #[test]
    fn cidrs() {
        let c = Ipv4Cidr::parse("10.10.10.1/24").unwrap();
        assert_eq!(c.network().to_string(), "10.10.10.0/24");
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 10, 10, 255));
        assert!(c.contains("10.10.10.200".parse().unwrap()));
        assert!(!c.contains("10.10.11.1".parse().unwrap()));
        assert!(Ipv4Cidr::parse("10.10.10.1/0").is_err());
        assert!(Ipv4Cidr::parse("10.10.10.1/33").is_err());
        assert!(Ipv4Cidr::parse("10.10.10.1").is_err());
        assert_eq!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 0), None);
    }

    #[test]
    fn pools() {
        let r = Ipv4Addr::new(10, 0, 7, 1);
        let p = Pool::new("10.0.7.2-10.0.7.6", r, 29).unwrap();
        assert_eq!(
            (p.first(), p.last()),
            ("10.0.7.2".parse().unwrap(), "10.0.7.6".parse().unwrap())
        );
        assert_eq!(p.range(), "10.0.7.2-10.0.7.6");
        assert!(Pool::new("10.0.7.6-10.0.7.2", r, 29)
            .unwrap_err()
            .contains("after the last"));
        assert!(Pool::new("10.0.7.2-10.0.7.7", r, 29)
            .unwrap_err()
            .contains("broadcast"));
        assert!(Pool::new("10.0.7.1-10.0.7.6", r, 29)
            .unwrap_err()
            .contains("inside the range"));
        assert!(Pool::new("10.0.7.2-10.0.8.6", r, 29)
            .unwrap_err()
            .contains("one /29"));
        assert!(Pool::new("10.0.7.2", r, 29)
            .unwrap_err()
            .contains("first-last"));
        assert!(Pool::new("10.0.7.2-10.0.7.6", r, 31)
            .unwrap_err()
            .contains("no room"));
    }

    #[test]
    fn urls() {
        assert!(BootfileUrl::parse("http://10.10.10.11:8080/bootstrap").is_ok());
        assert!(BootfileUrl::parse("bootstrap")
            .unwrap_err()
            .contains("tftp://<dhcp-server>"));
        assert!(BootfileUrl::parse("http://x/a\nb").is_err());
        assert!(EapiUrl::parse("unix:/var/run/command-api.sock").is_ok());
        assert!(EapiUrl::parse("ftp://x").is_err());
        assert!(EapiUrl::parse("http://x/\n").is_err());
    }
}
