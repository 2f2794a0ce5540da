//! EOS interface names and the Linux kernel names EOS gives the same interfaces.
//!
//! Verified on EOS: `Ethernet3` is `et3`, `Ethernet49/1` is `et49_1`, `Management1` is
//! `ma1`, `Vlan100` is `vlan100`. `Port-Channel10` -> `po10` and `Loopback0` -> `lo0`
//! follow the same rule but are **unverified**: callers must check the result against
//! the kernel's interface list, which [`resolve_kernel_name`] does.

use std::cmp::Ordering;

/// Kinds of interface that have a kernel counterpart: (EOS prefix, kernel prefix,
/// whether the number may have `/`-separated parts, whether the mapping is verified).
const KINDS: &[(&str, &str, bool, bool)] = &[
    ("Ethernet", "et", true, true),
    ("Management", "ma", true, true),
    ("Vlan", "vlan", false, true),
    ("Port-Channel", "po", false, false),
    ("Loopback", "lo", false, false),
];

/// Why an EOS name has no kernel interface to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is not an EOS interface name this module knows how to map.
    #[error("{0:?} is not an EOS interface name with a kernel interface (expected e.g. Ethernet3, Ethernet49/1, Management1, Vlan100)")]
    NotMappable(String),
    /// The mapped kernel interface does not exist.
    #[error("EOS interface {eos} has no kernel interface {kernel}{}", if *.verified { "" } else { " (the name mapping for this kind of interface is unverified)" })]
    NoKernelInterface {
        /// The EOS name asked for.
        eos: String,
        /// The kernel name it maps to.
        kernel: String,
        /// Whether the mapping for this kind is known to be right.
        verified: bool,
    },
}

/// The kernel name of an EOS interface (`Ethernet49/1` -> `et49_1`), or `None` if the
/// name is not of a kind that maps. The prefix is matched case-insensitively, as the
/// EOS CLI does; a space before the number is allowed (`ethernet 3`).
pub fn eos_to_kernel(eos: &str) -> Option<String> {
    let (kind, numbers) = split_eos(eos)?;
    let (_, kernel_prefix, _, _) = KINDS[kind];
    Some(format!("{kernel_prefix}{}", join_numbers(&numbers, "_")))
}

/// The EOS name of a kernel interface (`et49_1` -> `Ethernet49/1`), or `None` for
/// interfaces EOS does not name (`lo`, `eth0`, `br0`, `vnet0`, ...). Kernel names are
/// case-sensitive, so this is too.
pub fn kernel_to_eos(kernel: &str) -> Option<String> {
    KINDS
        .iter()
        .find_map(|&(eos_prefix, kernel_prefix, multi, _)| {
            let rest = kernel.strip_prefix(kernel_prefix)?;
            let numbers = parse_numbers(rest, '_', multi)?;
            Some(format!("{eos_prefix}{}", join_numbers(&numbers, "/")))
        })
}

/// The kernel name of `eos`, checked against the interfaces the kernel has; an error
/// rather than a guess when it is missing (unverified kinds, or a port not yet created).
pub fn resolve_kernel_name<S: AsRef<str>>(
    eos: &str,
    kernel_names: &[S],
) -> Result<String, NameError> {
    resolve_kernel_name_with(eos, |kernel| {
        kernel_names.iter().any(|k| k.as_ref() == kernel)
    })
}

/// [`resolve_kernel_name`] with a lookup of the caller's choice (a set or a map,
/// so that resolving every port of a large switch is not quadratic).
pub fn resolve_kernel_name_with(
    eos: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<String, NameError> {
    let (kind, _) = split_eos(eos).ok_or_else(|| NameError::NotMappable(eos.to_owned()))?;
    let kernel = eos_to_kernel(eos).ok_or_else(|| NameError::NotMappable(eos.to_owned()))?;
    if exists(&kernel) {
        Ok(kernel)
    } else {
        Err(NameError::NoKernelInterface {
            eos: canonical_eos(eos).unwrap_or_else(|| eos.to_owned()),
            kernel,
            verified: KINDS[kind].3,
        })
    }
}

/// The canonical spelling of an EOS name (`ethernet 03` -> `Ethernet3`).
pub fn canonical_eos(eos: &str) -> Option<String> {
    let (kind, numbers) = split_eos(eos)?;
    Some(format!("{}{}", KINDS[kind].0, join_numbers(&numbers, "/")))
}

/// Orders interface names as people do: `Ethernet2` before `Ethernet10`,
/// `Ethernet49/2` before `Ethernet49/10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                // Compare numerically without overflow: strip leading zeros, then length, then digits.
                let (ta, tb) = (trim_zeros(na), trim_zeros(nb));
                let order = ta
                    .len()
                    .cmp(&tb.len())
                    .then_with(|| ta.cmp(tb))
                    .then_with(|| na.len().cmp(&nb.len()));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[start..]
}

/// Splits an EOS name into its kind (index into `KINDS`) and numbers.
fn split_eos(eos: &str) -> Option<(usize, Vec<u32>)> {
    let eos = eos.trim();
    KINDS
        .iter()
        .enumerate()
        .find_map(|(kind, &(eos_prefix, _, multi, _))| {
            let head = eos.get(..eos_prefix.len())?;
            if !head.eq_ignore_ascii_case(eos_prefix) {
                return None;
            }
            let rest = eos[eos_prefix.len()..].trim_start_matches(' ');
            Some((kind, parse_numbers(rest, '/', multi)?))
        })
}

/// `49/1` (or `49_1`) -> [49, 1]; every part must be decimal digits.
fn parse_numbers(text: &str, separator: char, multi: bool) -> Option<Vec<u32>> {
    let numbers: Vec<u32> = text
        .split(separator)
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    (multi || numbers.len() == 1).then_some(numbers)
}

fn join_numbers(numbers: &[u32], separator: &str) -> String {
    numbers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_pairs_map_both_ways() {
        let pairs = [
            ("Ethernet3", "et3"),
            ("Ethernet49/1", "et49_1"),
            ("Ethernet3/1/2", "et3_1_2"),
            ("Management1", "ma1"),
            ("Management1/1", "ma1_1"),
            ("Vlan100", "vlan100"),
            ("Port-Channel10", "po10"),
            ("Loopback0", "lo0"),
        ];
        for (eos, kernel) in pairs {
            assert_eq!(eos_to_kernel(eos).as_deref(), Some(kernel), "{eos}");
            assert_eq!(kernel_to_eos(kernel).as_deref(), Some(eos), "{kernel}");
        }
    }

    #[test]
    fn eos_input_is_case_insensitive_and_canonicalised() {
        assert_eq!(eos_to_kernel("ethernet3").as_deref(), Some("et3"));
        assert_eq!(eos_to_kernel("ETHERNET49/1").as_deref(), Some("et49_1"));
        assert_eq!(eos_to_kernel("port-channel10").as_deref(), Some("po10"));
        assert_eq!(eos_to_kernel("Ethernet 03").as_deref(), Some("et3"));
        assert_eq!(canonical_eos("vlan 0100").as_deref(), Some("Vlan100"));
    }

    #[test]
    fn names_that_do_not_map() {
        for eos in [
            "",
            "Ethernet",
            "Ethernet3/",
            "Ethernet/3",
            "Ethernet3.100",
            "Vlan1/2",
            "Tunnel1",
            "Vxlan1",
            "Et3",
            "Ethernet-3",
        ] {
            assert_eq!(eos_to_kernel(eos), None, "{eos:?}");
        }
        for kernel in [
            "lo", "eth0", "br0", "vnet0", "et", "et3_", "ET3", "vlan1_2", "po", "ma1__1", "et3.100",
        ] {
            assert_eq!(kernel_to_eos(kernel), None, "{kernel:?}");
        }
    }

    #[test]
    fn resolve_reports_missing_kernel_interfaces() {
        let kernel = ["lo", "et1", "et49_1", "ma1", "vlan100"];
        assert_eq!(
            resolve_kernel_name("Ethernet49/1", &kernel).unwrap(),
            "et49_1"
        );
        assert_eq!(resolve_kernel_name("ethernet1", &kernel).unwrap(), "et1");
        let err = resolve_kernel_name("Ethernet2", &kernel).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EOS interface Ethernet2 has no kernel interface et2"
        );
        let err = resolve_kernel_name("Loopback0", &kernel).unwrap_err();
        assert_eq!(
            err,
            NameError::NoKernelInterface {
                eos: "Loopback0".into(),
                kernel: "lo0".into(),
                verified: false
            }
        );
        assert!(err.to_string().contains("unverified"));
        assert_eq!(
            resolve_kernel_name("Tunnel1", &kernel).unwrap_err(),
            NameError::NotMappable("Tunnel1".into())
        );
    }

    #[test]
    fn natural_order() {
        let mut names = vec![
            "Ethernet10",
            "Ethernet2",
            "Ethernet49/10",
            "Ethernet49/2",
            "Management1",
            "Ethernet1",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "Ethernet1",
                "Ethernet2",
                "Ethernet10",
                "Ethernet49/2",
                "Ethernet49/10",
                "Management1"
            ]
        );
        assert_eq!(
            natural_cmp("et99999999999999999999", "et100000000000000000000"),
            Ordering::Less
        );
    }

    fn eos_name() -> impl Strategy<Value = String> {
        let number = 0u32..100_000;
        prop_oneof![
            prop::collection::vec(number.clone(), 1..4)
                .prop_map(|n| format!("Ethernet{}", join_numbers(&n, "/"))),
            prop::collection::vec(number.clone(), 1..3)
                .prop_map(|n| format!("Management{}", join_numbers(&n, "/"))),
            number.clone().prop_map(|n| format!("Vlan{n}")),
            number.clone().prop_map(|n| format!("Port-Channel{n}")),
            number.prop_map(|n| format!("Loopback{n}")),
        ]
    }

    proptest! {
        #[test]
        fn eos_names_round_trip(eos in eos_name()) {
            let kernel = eos_to_kernel(&eos).unwrap();
            prop_assert_eq!(kernel_to_eos(&kernel), Some(eos.clone()));
            prop_assert_eq!(eos_to_kernel(&eos.to_lowercase()), Some(kernel));
        }

        #[test]
        fn kernel_to_eos_round_trips_whatever_it_accepts(kernel in "[a-z]{0,5}[0-9_]{0,8}") {
            if let Some(eos) = kernel_to_eos(&kernel) {
                // Leading zeros are the only spelling that does not come back as typed.
                let back = eos_to_kernel(&eos).unwrap();
                prop_assert_eq!(kernel_to_eos(&back), Some(eos));
            }
        }
    }
}
