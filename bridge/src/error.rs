use std::{fmt, io, path::PathBuf};

/// Everything that can go wrong talking to the kernel. Each message names
/// the link (or the sysctl) and the operation, and says what to check, so a
/// single log line is enough to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The kernel refused a netlink request (an `NLMSG_ERROR` with an errno).
    #[error("{}{op} failed: {} (errno {errno}){}", LinkPrefix(link), errno_text(*errno), errno_hint(*errno))]
    Kernel {
        /// What was being done, e.g. `set mtu 9000`.
        op: String,
        /// The link it was done to; `None` for whole-table dumps.
        link: Option<String>,
        /// Positive errno from the kernel's reply.
        errno: i32,
    },

    /// The bridge name is held by a link that is not a bridge. Nothing was
    /// changed: reusing it would reconfigure someone else's interface.
    #[error(
        "link {link}: cannot use it as the bridge: it exists with kind {}, not \"bridge\"; \
         nothing was changed. Delete or rename that link, or configure another bridge name",
        KindText(kind)
    )]
    NotABridge {
        /// The link name.
        link: String,
        /// Its `IFLA_INFO_KIND`, `None` for devices without one (physical
        /// NICs, loopback).
        kind: Option<String>,
    },

    /// The bridge spec cannot be applied to any kernel.
    #[error("link {link:?}: invalid bridge spec: {reason}")]
    InvalidSpec {
        /// The requested bridge name.
        link: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A netlink socket could not be opened, bound, configured or read.
    #[error("netlink: {op} failed: {source}{}", io_hint(source))]
    Socket {
        /// What was being done, e.g. `subscribe to link events`.
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The kernel answered something this crate does not understand.
    #[error(
        "{}{op}: unexpected netlink reply: {detail}; this is a bug in ztps-bridge \
         or a kernel it does not support",
        LinkPrefix(link)
    )]
    Protocol {
        /// What was being done.
        op: String,
        /// The link concerned, if any.
        link: Option<String>,
        /// What was unexpected.
        detail: String,
    },

    /// A link disappeared between two steps of an operation.
    #[error(
        "link {link}: it disappeared during {op}; another process removed it \
         (retry, and check what else manages this link)"
    )]
    Vanished {
        /// The link name.
        link: String,
        /// What was being done.
        op: String,
    },

    /// An async entry point was called outside a tokio runtime.
    #[error("netlink: {op} must be called from inside a tokio runtime")]
    NoRuntime {
        /// What was attempted.
        op: &'static str,
    },

    /// A sysctl file could not be read or written.
    #[error("sysctl {}: {op} failed: {source}{}", path.display(), sysctl_hint(source))]
    Sysctl {
        /// `read` or `write`.
        op: &'static str,
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A sysctl file held something other than an integer.
    #[error("sysctl {}: holds {value:?}, expected an integer; is this really /proc/sys?", path.display())]
    SysctlValue {
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// What it held.
        value: String,
    },
}

impl BridgeError {
    /// The errno behind this error, when there is one, so callers can tell
    /// "not permitted" from "busy" without matching on text.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            Self::Socket { source, .. } | Self::Sysctl { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Maps an rtnetlink error to a [`BridgeError`] naming `op` and `link`.
    pub(crate) fn from_rtnetlink(
        op: impl Into<String>,
        link: Option<&str>,
        err: rtnetlink::Error,
    ) -> Self {
        let op = op.into();
        let link = link.map(str::to_owned);
        match err {
            rtnetlink::Error::NetlinkError(msg) => Self::Kernel {
                op,
                link,
                errno: msg.raw_code().abs(),
            },
            rtnetlink::Error::RequestFailed => Self::Protocol {
                op,
                link,
                detail:
                    "the netlink connection task has stopped (was the tokio runtime shut down?)"
                        .into(),
            },
            other => Self::Protocol {
                op,
                link,
                detail: other.to_string(),
            },
        }
    }

    pub(crate) fn socket(op: impl Into<String>, source: io::Error) -> Self {
        Self::Socket {
            op: op.into(),
            source,
        }
    }
}

struct LinkPrefix<'a>(&'a Option<String>);

impl fmt::Display for LinkPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(link) => write!(f, "link {link}: "),
            None => f.write_str("netlink: "),
        }
    }
}

struct KindText<'a>(&'a Option<String>);

impl fmt::Display for KindText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(kind) => write!(f, "{kind:?}"),
            None => f.write_str("none (a physical or built-in device)"),
        }
    }
}

fn errno_text(errno: i32) -> String {
    // io::Error's Display appends " (os error N)"; keep only strerror's text.
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn errno_hint(errno: i32) -> &'static str {
    match errno {
        libc::EPERM | libc::EACCES => {
            "; needs CAP_NET_ADMIN in this network namespace (run as root)"
        }
        libc::EOPNOTSUPP => {
            "; the kernel does not support this (for a bridge: CONFIG_BRIDGE or the bridge module)"
        }
        libc::EINVAL | libc::ERANGE => {
            "; the kernel rejected a value (check the MTU is within the link's range)"
        }
        libc::ENODEV => "; the link does not exist (was it removed meanwhile?)",
        libc::EEXIST => "; it already exists",
        libc::EBUSY => "; the link is busy, retry",
        libc::ENOBUFS | libc::ENOMEM => "; the kernel is out of memory or buffer space",
        _ => "",
    }
}

fn io_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(e) => match e {
            libc::EPERM | libc::EACCES => "; needs CAP_NET_ADMIN (run as root)",
            libc::EMFILE | libc::ENFILE => "; out of file descriptors",
            libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT => "; the kernel has no rtnetlink support",
            _ => "",
        },
        None => "",
    }
}

fn sysctl_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => "; needs root (CAP_NET_ADMIN) to write sysctls",
        Some(libc::EROFS) => "; /proc/sys is mounted read-only (a container?); it must be writable",
        Some(libc::ENOENT) => "; is /proc mounted and IPv4 enabled in this kernel?",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_names_link_operation_and_remedy() {
        let err = BridgeError::Kernel {
            op: "create bridge".into(),
            link: Some("br0".into()),
            errno: libc::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "link br0: create bridge failed: Operation not permitted (errno 1); \
             needs CAP_NET_ADMIN in this network namespace (run as root)"
        );
        assert_eq!(err.errno(), Some(libc::EPERM));
    }

    #[test]
    fn dump_error_without_link_says_netlink() {
        let err = BridgeError::Kernel {
            op: "list links".into(),
            link: None,
            errno: libc::EBUSY,
        };
        // strerror's wording differs between glibc and musl: check the frame.
        let text = err.to_string();
        assert!(text.starts_with("netlink: list links failed: "), "{text}");
        assert!(
            text.ends_with(" (errno 16); the link is busy, retry"),
            "{text}"
        );
    }

    #[test]
    fn not_a_bridge_names_kind_and_says_nothing_changed() {
        let err = BridgeError::NotABridge {
            link: "br0".into(),
            kind: Some("veth".into()),
        };
        let text = err.to_string();
        assert!(text.starts_with("link br0: "), "{text}");
        assert!(text.contains("kind \"veth\", not \"bridge\""), "{text}");
        assert!(text.contains("nothing was changed"), "{text}");

        let err = BridgeError::NotABridge {
            link: "eth0".into(),
            kind: None,
        };
        assert!(err.to_string().contains("kind none (a physical"), "{err}");
    }

    #[test]
    fn rtnetlink_request_failed_is_a_protocol_error_with_context() {
        let err =
            BridgeError::from_rtnetlink("bring up", Some("br0"), rtnetlink::Error::RequestFailed);
        assert!(matches!(err, BridgeError::Protocol { .. }));
        assert!(err.to_string().starts_with("link br0: bring up: "), "{err}");
        assert_eq!(err.errno(), None);
    }

    #[test]
    fn sysctl_error_names_path_and_hint() {
        let err = BridgeError::Sysctl {
            op: "write",
            path: "/proc/sys/net/ipv4/ip_forward".into(),
            source: io::Error::from_raw_os_error(libc::EROFS),
        };
        let text = err.to_string();
        assert!(
            text.starts_with("sysctl /proc/sys/net/ipv4/ip_forward: write failed: "),
            "{text}"
        );
        assert!(
            text.ends_with("mounted read-only (a container?); it must be writable"),
            "{text}"
        );
    }
}
