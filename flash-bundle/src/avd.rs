//! An AVD project's output as the source of a spine's `[[ztp.leaf]]` entries
//! and leaf configs (`cargo xtask dist --avd DIR [--spine NAME]`).
//!
//! AVD (Arista Validated Designs) writes `DIR/intended/structured_configs/<host>.yml`
//! and `DIR/intended/configs/<host>.cfg` for every device. A spine's
//! `ethernet_interfaces` name, per port, the `peer` device, its
//! `peer_interface`, `peer_type` and the port's `ip_address`: a mapping keyed
//! by interface name in AVD 3.x, a list of entries with `name` in 4.x and 5.x.
//! Only these structured fields are read, never interface descriptions (their
//! format changed in AVD 5.0).
//!
//! A port faces a leaf when its `peer_type` is a leaf type (`l3leaf`, `leaf`,
//! `l2leaf`), or, without a `peer_type`, when the peer has a config in
//! `intended/configs`. A device with such ports is a spine. Every problem in a
//! file is reported at once as `file:line:column: key: message`; a shape this
//! module does not know is an error, never skipped.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use ztps_config::value::check_eos_interface;
use ztps_config::{ConfigError, ConfigIssue, LeafName, ZtpLeaf};

/// `peer_type` values of a leaf (AVD node types).
const LEAF_TYPES: [&str; 3] = ["l3leaf", "leaf", "l2leaf"];

/// Where AVD writes the structured configs, relative to the project.
pub const STRUCTURED_CONFIGS: &str = "intended/structured_configs";
/// Where AVD writes the device configs, relative to the project.
pub const CONFIGS: &str = "intended/configs";

/// One spine of the project and the leaves on its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvdSpine {
    /// The spine's hostname (the structured config's file name).
    pub hostname: String,
    /// The leaf on each leaf-facing port, in the file's order, one port per leaf.
    pub leaves: Vec<ZtpLeaf>,
    /// Things allowed but worth saying (a leaf on two ports of this spine).
    pub warnings: Vec<String>,
}

/// A leaf-facing port as read from a structured config.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    interface: String,
    peer: String,
    key: String,
}

/// The spines of an AVD project at `dir`: every structured config with a
/// leaf-facing port, sorted by hostname; or only `spine` when given.
pub fn load_spines(dir: &Path, spine: Option<&str>) -> Result<Vec<AvdSpine>, ConfigError> {
    let structured = dir.join(STRUCTURED_CONFIGS);
    let whole = |path: &Path, message: String| {
        ConfigError::whole_file(&path.display().to_string(), message)
    };
    let configs: BTreeSet<String> = fs::read_dir(dir.join(CONFIGS))
        .map_err(|e| {
            whole(
                &dir.join(CONFIGS),
                format!("{e}: not an AVD project's output"),
            )
        })?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".cfg").map(str::to_string)
        })
        .collect();
    let mut files: Vec<(String, PathBuf)> = fs::read_dir(&structured)
        .map_err(|e| whole(&structured, format!("{e}: not an AVD project's output")))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let host = name
                .strip_suffix(".yml")
                .or_else(|| name.strip_suffix(".yaml"))?;
            Some((host.to_string(), e.path()))
        })
        .collect();
    files.sort();
    if let Some(want) = spine {
        files.retain(|(host, _)| host == want);
        if files.is_empty() {
            return Err(whole(
                &structured,
                format!("no structured config {want}.yml for --spine {want}"),
            ));
        }
    }
    let mut spines = Vec::new();
    let mut problems: Option<ConfigError> = None;
    for (host, path) in files {
        let text =
            fs::read_to_string(&path).map_err(|e| whole(&path, format!("cannot read: {e}")))?;
        match leaf_ports(&text, &path.display().to_string(), &|peer| {
            configs.contains(peer)
        }) {
            Ok(ports) if ports.is_empty() => {
                if spine.is_some() {
                    return Err(whole(
                        &path,
                        "no ethernet_interfaces entry faces a leaf (peer_type l3leaf, leaf or \
                         l2leaf, or a peer with a config in intended/configs): not a spine"
                            .into(),
                    ));
                }
            }
            Ok(ports) => match spine_of(&host, ports, &path) {
                Ok(s) => spines.push(s),
                Err(e) => merge(&mut problems, e),
            },
            Err(e) => merge(&mut problems, e),
        }
    }
    if let Some(e) = problems {
        return Err(e);
    }
    if spines.is_empty() {
        return Err(whole(
            &structured,
            "no device has a port facing a leaf: no spine to build a bundle for".into(),
        ));
    }
    Ok(spines)
}

/// Errors of several files: one error, their lines one after the other.
fn merge(into: &mut Option<ConfigError>, e: ConfigError) {
    match into {
        None => *into = Some(e),
        Some(first) => {
            // One origin per error: fold the others' file names into their messages.
            for mut i in e.issues {
                let at = match (i.line, i.column) {
                    (Some(l), Some(c)) => format!(":{l}:{c}"),
                    (Some(l), None) => format!(":{l}"),
                    _ => String::new(),
                };
                i.message = format!("(in {}{at}) {}", e.origin, i.message);
                i.line = None;
                i.column = None;
                first.issues.push(i);
            }
        }
    }
}

fn spine_of(host: &str, ports: Vec<Port>, path: &Path) -> Result<AvdSpine, ConfigError> {
    let mut leaves: Vec<ZtpLeaf> = Vec::new();
    let mut warnings = Vec::new();
    let mut issues = Vec::new();
    for p in ports {
        let name = match LeafName::parse(&p.peer) {
            Ok(n) => n,
            Err(m) => {
                issues.push(ConfigIssue {
                    line: None,
                    column: None,
                    key: format!("{}.peer", p.key),
                    message: m,
                });
                continue;
            }
        };
        if let Some(first) = leaves.iter().find(|l| l.name == name) {
            warnings.push(format!(
                "{}: leaf {name} is on {} and {}; ztps serves it on {} only",
                path.display(),
                first.interface,
                p.interface,
                first.interface
            ));
            continue;
        }
        leaves.push(ZtpLeaf {
            interface: p.interface,
            name,
            serial: None,
        });
    }
    if !issues.is_empty() {
        return Err(ConfigError {
            origin: path.display().to_string(),
            issues,
        });
    }
    Ok(AvdSpine {
        hostname: host.to_string(),
        leaves,
        warnings,
    })
}

/// A YAML node's position, 1-based line and column.
fn at(node: &MarkedYaml<'_>) -> (Option<usize>, Option<usize>) {
    let m = node.span.start;
    (Some(m.line()), Some(m.col() + 1))
}

/// Collects problems of one structured config.
struct Problems {
    issues: Vec<ConfigIssue>,
}

impl Problems {
    fn report(&mut self, node: &MarkedYaml<'_>, key: &str, message: String) {
        let (line, column) = at(node);
        self.issues.push(ConfigIssue {
            line,
            column,
            key: key.into(),
            message,
        });
    }
}

/// The text of a scalar (a string, or a number or boolean written plainly).
fn scalar(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

fn kind(node: &MarkedYaml<'_>) -> &'static str {
    match &node.data {
        YamlData::Value(Scalar::Null) => "null",
        YamlData::Value(_) | YamlData::Representation(..) => "a scalar",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Tagged(..) => "a tagged node",
        YamlData::Alias(_) => "an alias",
        YamlData::BadValue => "a bad value",
    }
}

/// `(key text, key node, value node)` of a mapping, in the file's order.
fn entries<'a, 'i>(
    node: &'a MarkedYaml<'i>,
) -> Option<Vec<(Option<String>, &'a MarkedYaml<'i>, &'a MarkedYaml<'i>)>> {
    match &node.data {
        YamlData::Mapping(m) => Some(m.iter().map(|(k, v)| (scalar(k), k, v)).collect()),
        _ => None,
    }
}

/// The leaf-facing ports of one structured config (`origin` names it in errors).
/// `has_config(peer)`: whether `intended/configs/<peer>.cfg` exists.
fn leaf_ports(
    text: &str,
    origin: &str,
    has_config: &dyn Fn(&str) -> bool,
) -> Result<Vec<Port>, ConfigError> {
    let fail = |issues| ConfigError {
        origin: origin.into(),
        issues,
    };
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        let m = e.marker();
        fail(vec![ConfigIssue {
            line: Some(m.line()),
            column: Some(m.col() + 1),
            key: String::new(),
            message: format!("not YAML: {}", e.info()),
        }])
    })?;
    let Some(root) = docs.first() else {
        return Ok(Vec::new());
    };
    let mut p = Problems { issues: Vec::new() };
    let Some(top) = entries(root) else {
        p.report(
            root,
            "",
            format!("a structured config is a mapping, not {}", kind(root)),
        );
        return Err(fail(p.issues));
    };
    let Some((_, _, ifaces)) = top
        .into_iter()
        .find(|(k, _, _)| k.as_deref() == Some("ethernet_interfaces"))
    else {
        return Ok(Vec::new());
    };
    const KEY: &str = "ethernet_interfaces";
    // (key path, interface name, entry mapping node)
    let mut items: Vec<(String, String, &MarkedYaml<'_>)> = Vec::new();
    match &ifaces.data {
        // AVD 3.x: Ethernet1: {peer: ..., ...}
        YamlData::Mapping(_) => {
            for (name, key_node, value) in entries(ifaces).unwrap_or_default() {
                match name {
                    Some(n) => items.push((format!("{KEY}.{n}"), n, value)),
                    None => p.report(
                        key_node,
                        KEY,
                        format!("an interface name must be a scalar, not {}", kind(key_node)),
                    ),
                }
            }
        }
        // AVD 4.x and 5.x: - name: Ethernet1
        YamlData::Sequence(list) => {
            for (i, item) in list.iter().enumerate() {
                let key = format!("{KEY}[{i}]");
                let name = entries(item).and_then(|e| {
                    e.into_iter()
                        .find(|(k, _, _)| k.as_deref() == Some("name"))
                        .map(|(_, _, v)| v)
                });
                match name.map(|n| (n, scalar(n))) {
                    Some((_, Some(n))) => items.push((key, n, item)),
                    Some((node, None)) => p.report(
                        node,
                        &format!("{key}.name"),
                        format!("must be an interface name, not {}", kind(node)),
                    ),
                    None if entries(item).is_none() => p.report(
                        item,
                        &key,
                        format!("an interface entry is a mapping, not {}", kind(item)),
                    ),
                    None => p.report(item, &key, "missing: name".into()),
                }
            }
        }
        YamlData::Value(Scalar::Null) => {}
        _ => p.report(
            ifaces,
            KEY,
            format!(
                "must be a mapping (AVD 3.x) or a list (AVD 4.x and 5.x), not {}",
                kind(ifaces)
            ),
        ),
    }
    let mut ports = Vec::new();
    for (key, name, entry) in items {
        let Some(fields) = entries(entry) else {
            if !matches!(entry.data, YamlData::Value(Scalar::Null)) {
                p.report(
                    entry,
                    &key,
                    format!("an interface entry is a mapping, not {}", kind(entry)),
                );
            }
            continue;
        };
        let mut field = |f: &str| -> Option<String> {
            let (_, _, v) = fields.iter().find(|(k, _, _)| k.as_deref() == Some(f))?;
            match scalar(v) {
                Some(s) => Some(s),
                None if matches!(v.data, YamlData::Value(Scalar::Null)) => None,
                None => {
                    p.report(
                        v,
                        &format!("{key}.{f}"),
                        format!("must be a scalar, not {}", kind(v)),
                    );
                    None
                }
            }
        };
        let (peer, peer_type) = (field("peer"), field("peer_type"));
        // Read so that a wrong shape is reported even where they are not needed.
        let _ = (field("peer_interface"), field("ip_address"));
        let Some(peer) = peer else { continue };
        let faces_leaf = match &peer_type {
            Some(t) => LEAF_TYPES.contains(&t.as_str()),
            None => has_config(&peer),
        };
        if !faces_leaf {
            continue;
        }
        if let Err(m) = check_eos_interface(&name) {
            p.report(entry, &key, m);
            continue;
        }
        ports.push(Port {
            interface: name,
            peer,
            key,
        });
    }
    if p.issues.is_empty() {
        Ok(ports)
    } else {
        Err(fail(p.issues))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
        leaf_ports(text, "s.yml", &|peer| peer.starts_with("leaf")).map(|v| {
            v.into_iter()
                .map(|p| (p.interface, p.peer))
                .collect::<Vec<_>>()
        })
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn avd3_mapping_form() {
        let text = "hostname: spine1\nethernet_interfaces:\n  Ethernet1:\n    peer: leaf1\n    peer_interface: Ethernet49\n    peer_type: l3leaf\n    ip_address: 10.0.0.0/31\n    type: routed\n  Ethernet2:\n    peer: core1\n    peer_type: super-spine\n  Ethernet3:\n    description: P2P_LINK_TO_LEAF9_Ethernet1\n";
        assert_eq!(ports(text).unwrap(), pairs(&[("Ethernet1", "leaf1")]));
    }

    #[test]
    fn avd4_list_form_and_peer_without_type() {
        let text = "ethernet_interfaces:\n- name: Ethernet1\n  peer: leaf1\n  peer_interface: Ethernet49/1\n  peer_type: l3leaf\n  ip_address: 10.0.0.0/31\n- name: Ethernet49/1\n  peer: leaf2\n  ip_address: 10.0.0.2/31\n- name: Ethernet50/1\n  peer: spine2\n  peer_type: spine\n";
        assert_eq!(
            ports(text).unwrap(),
            pairs(&[("Ethernet1", "leaf1"), ("Ethernet49/1", "leaf2")])
        );
    }

    #[test]
    fn no_ethernet_interfaces_is_no_ports() {
        assert_eq!(ports("hostname: x\n").unwrap(), vec![]);
        assert_eq!(ports("").unwrap(), vec![]);
        assert_eq!(ports("ethernet_interfaces:\n").unwrap(), vec![]);
    }

    #[test]
    fn unknown_shapes_name_file_line_and_key() {
        let e = ports("ethernet_interfaces: Ethernet1\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "s.yml:1:22: ethernet_interfaces: must be a mapping (AVD 3.x) or a list"
            ),
            "{e}"
        );
        let e = ports("ethernet_interfaces:\n- peer: leaf1\n- name: [Ethernet2]\n- Ethernet3\n")
            .unwrap_err();
        let keys: Vec<(Option<usize>, &str)> =
            e.issues.iter().map(|i| (i.line, i.key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (Some(2), "ethernet_interfaces[0]"),
                (Some(3), "ethernet_interfaces[1].name"),
                (Some(4), "ethernet_interfaces[2]")
            ],
            "{e}"
        );
        let e = ports("ethernet_interfaces:\n  Ethernet1:\n    peer: {name: leaf1}\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "s.yml:3:11: ethernet_interfaces.Ethernet1.peer: must be a scalar, not a mapping"
            ),
            "{e}"
        );
        let e = ports("- 1\n").unwrap_err();
        assert!(e.to_string().contains("is a mapping, not a list"), "{e}");
        let e = ports("ethernet_interfaces:\n  Ethernet1: [1\n").unwrap_err();
        assert!(e.to_string().starts_with("s.yml:"), "{e}");
        assert!(e.to_string().contains("not YAML"), "{e}");
    }

    #[test]
    fn a_bad_interface_name_facing_a_leaf_is_an_error() {
        let e = ports("ethernet_interfaces:\n- name: Eth 1\n  peer: leaf1\n  peer_type: l3leaf\n")
            .unwrap_err();
        assert_eq!(e.issues[0].key, "ethernet_interfaces[0]", "{e}");
        assert_eq!(e.issues[0].line, Some(2), "{e}");
    }
}
