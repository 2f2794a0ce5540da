//! Typed views of the few `show` commands the agent needs, read leniently: EOS
//! releases add, rename and drop fields, so unknown fields are ignored and optional
//! ones may be missing. Only what the agent cannot work without is required.

use std::fmt;
use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use crate::names::natural_cmp;
use crate::EapiError;

/// One row of `show interfaces status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceStatus {
    /// EOS interface name, e.g. `Ethernet3`.
    pub name: String,
    /// `connected`, `notconnect`, `disabled`, `errdisabled`, ...
    pub link_status: String,
    /// The configured description ("" when none).
    pub description: String,
    /// `routed`, `bridged`, ... from `vlanInformation.interfaceMode`.
    pub interface_mode: Option<String>,
    /// `up`, `down`, `lowerLayerDown`, ...; absent in old releases.
    pub line_protocol_status: Option<String>,
    /// Media or port type, e.g. `10/100/1000` or `EbraTestPhyPort`.
    pub interface_type: Option<String>,
    /// Bandwidth in bit/s.
    pub bandwidth: Option<u64>,
}

impl InterfaceStatus {
    /// Whether EOS reports the link as connected.
    pub fn is_connected(&self) -> bool {
        self.link_status == "connected"
    }
}

/// An IPv4 address with its prefix length, as EOS reports `address` and `maskLen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    /// The interface's own address (not the network address).
    pub address: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// One interface of `show ip interface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpInterface {
    /// EOS interface name.
    pub name: String,
    /// Primary address; `None` when EOS reports 0.0.0.0/0 (no address, or unnumbered).
    pub address: Option<Ipv4Prefix>,
    /// Secondary addresses in EOS's order.
    pub secondaries: Vec<Ipv4Prefix>,
    /// The interface whose address this one borrows (`ip address unnumbered Loopback0`).
    ///
    /// No public capture of a full `show ip interface` with an unnumbered interface was
    /// found. The only public evidence is test data of ANTA (aristanetworks/anta) for
    /// `show ip interface brief`, where `interfaceAddress` is
    /// `{"ipAddr": {"address": "0.0.0.0", "maskLen": 0}, "unnumberedIntf": "Vlan42"}`.
    /// The new-schema `interfaceAddressBrief` has the same model, so this is read
    /// leniently from `interfaceAddressBrief.unnumberedIntf`, then
    /// `interfaceAddress.unnumberedIntf`, then a top-level `unnumberedIntf`; an empty
    /// string counts as none.
    pub unnumbered: Option<String>,
    /// `up`, `down`, `lowerLayerDown`, ...
    pub line_protocol_status: Option<String>,
    /// `connected`, `notconnect`, `disabled`, ...
    pub interface_status: Option<String>,
    /// IP MTU.
    pub mtu: Option<u32>,
    /// The configured description ("" when none or not reported).
    pub description: String,
}

/// The identity of the switch from `show version`. Every field is optional: old
/// releases lack some, and cEOS reports an empty hardware revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    /// `modelName`, e.g. `DCS-7010T-48-R` or `cEOSLab`.
    pub model: Option<String>,
    /// `serialNumber`.
    pub serial: Option<String>,
    /// `systemMacAddress`, as EOS writes it (`28:99:3a:23:92:09`).
    pub system_mac: Option<String>,
    /// `architecture`: `i386`, `i686` or `x86_64` (which musl binary fits).
    pub architecture: Option<String>,
    /// `version`, e.g. `4.20.7M`.
    pub version: Option<String>,
    /// `hardwareRevision`, e.g. `12.00`.
    pub hardware_revision: Option<String>,
    /// `mfgName`, e.g. `Arista` (newer releases only).
    pub manufacturer: Option<String>,
}

/// What `show management api http-commands` says about the eAPI servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementApi {
    /// `enabled`: eAPI as a whole (`no shutdown`).
    pub enabled: bool,
    /// `unixSocketServer.running`.
    pub unix_socket_running: bool,
    /// `localHttpServer.running`.
    pub local_http_running: bool,
    /// `localHttpServer.port`.
    pub local_http_port: Option<u16>,
    /// `urls`, as printed by EOS (`"Unix Socket : unix:/var/run/command-api.sock"`).
    pub urls: Vec<String>,
}

/// Reads the result of `show interfaces status [connected]`, sorted by name
/// (Ethernet2 before Ethernet10).
pub fn parse_interfaces_status(result: &Value) -> Result<Vec<InterfaceStatus>, EapiError> {
    const CMD: &str = "show interfaces status";
    let statuses = object_field(result, "interfaceStatuses", CMD)?;
    let mut rows = Vec::with_capacity(statuses.len());
    for (name, entry) in statuses {
        let raw = entry;
        let entry = entry_object(entry, name, CMD)?;
        let link_status = string(entry, "linkStatus").ok_or_else(|| {
            EapiError::malformed(
                Some(CMD),
                format!("a `linkStatus` string for {name}"),
                short_json(raw),
            )
        })?;
        rows.push(InterfaceStatus {
            name: name.clone(),
            link_status,
            description: string(entry, "description").unwrap_or_default(),
            interface_mode: entry
                .get("vlanInformation")
                .and_then(|v| v.get("interfaceMode"))
                .and_then(as_string),
            line_protocol_status: string(entry, "lineProtocolStatus"),
            interface_type: string(entry, "interfaceType"),
            bandwidth: entry.get("bandwidth").and_then(Value::as_u64),
        });
    }
    rows.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    Ok(rows)
}

/// One row of `show lldp neighbors`: who is cabled to a port of this switch.
///
/// The neighbour's fields come from LLDP frames the neighbour sends: untrusted
/// text, to be escaped before it reaches a terminal or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LldpNeighbor {
    /// This switch's port, EOS name, e.g. `Ethernet3`.
    pub port: String,
    /// The neighbour's system name, e.g. `leaf3.example.net`.
    pub neighbor_device: String,
    /// The neighbour's port, as it names it, e.g. `Ethernet48`.
    pub neighbor_port: String,
    /// How long the neighbour said its information stays valid; absent in some releases.
    pub ttl: Option<std::time::Duration>,
}

/// Reads the result of `show lldp neighbors`, sorted by port then neighbour.
/// Rows without a `port` are skipped; missing neighbour fields read as "".
pub fn parse_lldp_neighbors(result: &Value) -> Result<Vec<LldpNeighbor>, EapiError> {
    const CMD: &str = "show lldp neighbors";
    let rows = result
        .get("lldpNeighbors")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            EapiError::malformed(
                Some(CMD),
                "an object with an `lldpNeighbors` array",
                short_json(result),
            )
        })?;
    let mut neighbors: Vec<LldpNeighbor> = rows
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|row| {
            Some(LldpNeighbor {
                port: string(row, "port")?,
                neighbor_device: string(row, "neighborDevice").unwrap_or_default(),
                neighbor_port: string(row, "neighborPort").unwrap_or_default(),
                ttl: row
                    .get("ttl")
                    .and_then(Value::as_u64)
                    .map(std::time::Duration::from_secs),
            })
        })
        .collect();
    neighbors.sort_by(|a, b| {
        natural_cmp(&a.port, &b.port).then_with(|| a.neighbor_device.cmp(&b.neighbor_device))
    });
    Ok(neighbors)
}

/// Reads the result of `show ip interface` (old and new schemas) or
/// `show ip interface brief`, sorted by name.
pub fn parse_ip_interfaces(result: &Value) -> Result<Vec<IpInterface>, EapiError> {
    const CMD: &str = "show ip interface";
    let interfaces = object_field(result, "interfaces", CMD)?;
    let mut rows = Vec::with_capacity(interfaces.len());
    for (name, entry) in interfaces {
        let entry = entry_object(entry, name, CMD)?;
        let address_detail = entry.get("interfaceAddress");
        let address_brief = entry.get("interfaceAddressBrief");
        // Full schema: interfaceAddress.primaryIp; new schema also has
        // interfaceAddressBrief.ipAddr; `brief` has interfaceAddress.ipAddr.
        let primary = [
            address_detail.and_then(|a| a.get("primaryIp")),
            address_brief.and_then(|a| a.get("ipAddr")),
            address_detail.and_then(|a| a.get("ipAddr")),
        ]
        .into_iter()
        .flatten()
        .next();
        let address = match primary {
            Some(value) => parse_prefix(value, name)?.filter(|p| !p.address.is_unspecified()),
            None => None,
        };
        let secondaries = match address_detail {
            Some(detail) => parse_secondaries(detail, name)?,
            None => Vec::new(),
        };
        let unnumbered = [address_brief, address_detail]
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_object())
            .chain([entry])
            .find_map(|v| string(v, "unnumberedIntf").filter(|s| !s.is_empty()));
        rows.push(IpInterface {
            name: name.clone(),
            address,
            secondaries,
            unnumbered,
            line_protocol_status: string(entry, "lineProtocolStatus"),
            interface_status: string(entry, "interfaceStatus"),
            mtu: entry
                .get("mtu")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok()),
            description: string(entry, "description").unwrap_or_default(),
        });
    }
    rows.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    Ok(rows)
}

/// Reads the result of `show version`. Only requires an object: identity fields
/// are informational and may be missing.
pub fn parse_version(result: &Value) -> Result<Version, EapiError> {
    let Some(v) = result.as_object() else {
        return Err(EapiError::malformed(
            Some("show version"),
            "a JSON object",
            short_json(result),
        ));
    };
    let field = |key| string(v, key).filter(|s| !s.is_empty());
    Ok(Version {
        model: field("modelName"),
        serial: field("serialNumber"),
        system_mac: field("systemMacAddress"),
        architecture: field("architecture"),
        version: field("version"),
        hardware_revision: field("hardwareRevision"),
        manufacturer: field("mfgName"),
    })
}

/// Reads the result of `show management api http-commands`.
pub fn parse_management_api(result: &Value) -> Result<ManagementApi, EapiError> {
    let Some(v) = result.as_object() else {
        return Err(EapiError::malformed(
            Some("show management api http-commands"),
            "a JSON object",
            short_json(result),
        ));
    };
    let running = |server: &str| {
        v.get(server)
            .and_then(|s| s.get("running"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    Ok(ManagementApi {
        enabled: v.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        unix_socket_running: running("unixSocketServer"),
        local_http_running: running("localHttpServer"),
        local_http_port: v
            .get("localHttpServer")
            .and_then(|s| s.get("port"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        urls: v
            .get("urls")
            .and_then(Value::as_array)
            .map(|urls| urls.iter().filter_map(as_string).collect())
            .unwrap_or_default(),
    })
}

/// Secondaries: `secondaryIpsOrderedList` (a list) when present and non-empty, else
/// `secondaryIps` (an object keyed by address, in old releases).
fn parse_secondaries(detail: &Value, name: &str) -> Result<Vec<Ipv4Prefix>, EapiError> {
    let ordered = detail
        .get("secondaryIpsOrderedList")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty());
    let values: Vec<&Value> = match ordered {
        Some(list) => list.iter().collect(),
        None => match detail.get("secondaryIps") {
            Some(Value::Object(map)) => map.values().collect(),
            Some(Value::Array(list)) => list.iter().collect(),
            _ => Vec::new(),
        },
    };
    let mut secondaries = Vec::with_capacity(values.len());
    for value in values {
        if let Some(prefix) = parse_prefix(value, name)? {
            secondaries.push(prefix);
        }
    }
    Ok(secondaries)
}

/// `{"address": "10.0.0.1", "maskLen": 31}`; `None` if the address is missing.
fn parse_prefix(value: &Value, name: &str) -> Result<Option<Ipv4Prefix>, EapiError> {
    const CMD: &str = "show ip interface";
    let Some(address) = value.get("address").and_then(Value::as_str) else {
        return Ok(None);
    };
    let address: Ipv4Addr = address.parse().map_err(|_| {
        EapiError::malformed(
            Some(CMD),
            format!("an IPv4 address for {name}"),
            format!("{address:?}"),
        )
    })?;
    let prefix_len = value
        .get("maskLen")
        .and_then(Value::as_u64)
        .filter(|len| *len <= 32)
        .ok_or_else(|| {
            EapiError::malformed(
                Some(CMD),
                format!("a maskLen 0..=32 for {name}"),
                short_json(value),
            )
        })?;
    Ok(Some(Ipv4Prefix {
        address,
        prefix_len: prefix_len as u8,
    }))
}

fn object_field<'a>(
    result: &'a Value,
    key: &str,
    cmd: &str,
) -> Result<&'a Map<String, Value>, EapiError> {
    result.get(key).and_then(Value::as_object).ok_or_else(|| {
        EapiError::malformed(
            Some(cmd),
            format!("an object with an `{key}` object"),
            short_json(result),
        )
    })
}

fn entry_object<'a>(
    entry: &'a Value,
    name: &str,
    cmd: &str,
) -> Result<&'a Map<String, Value>, EapiError> {
    entry.as_object().ok_or_else(|| {
        EapiError::malformed(
            Some(cmd),
            format!("an object for {name}"),
            short_json(entry),
        )
    })
}

fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(as_string)
}

fn as_string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn short_json(value: &Value) -> String {
    crate::jsonrpc::excerpt(value.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn goeapi_lldp_neighbors_fixture() {
        let envelope =
            include_bytes!("../tests/fixtures/goeapi_show_lldp_neighbors_jsonrpc_envelope.json");
        let results = crate::parse_response(envelope, &["enable", "show lldp neighbors"]).unwrap();
        let neighbors = parse_lldp_neighbors(&results[1]).unwrap();
        let ports: Vec<&str> = neighbors.iter().map(|n| n.port.as_str()).collect();
        assert_eq!(
            ports,
            ["Ethernet3", "Ethernet4", "Ethernet14", "Management1"]
        );
        assert_eq!(
            neighbors[0],
            LldpNeighbor {
                port: "Ethernet3".into(),
                neighbor_device: "testsw1.aristanetworks.com".into(),
                neighbor_port: "Ethernet48".into(),
                ttl: Some(std::time::Duration::from_secs(120)),
            }
        );
        // Lenient: rows without a port are skipped, missing fields are empty.
        let odd = json!({"lldpNeighbors": [{"neighborDevice": "x"}, {"port": "Ethernet1"}, 7]});
        let odd = parse_lldp_neighbors(&odd).unwrap();
        assert_eq!(odd.len(), 1);
        assert_eq!(odd[0].neighbor_device, "");
        assert_eq!(odd[0].ttl, None);
        let err = parse_lldp_neighbors(&json!({"lldpNeighbours": []})).unwrap_err();
        assert!(err.to_string().contains("lldpNeighbors"), "{err}");
    }

    #[test]
    fn ten_thousand_interfaces_parse_quickly() {
        // Speed is measured in `cargo xtask bench`; this only checks that a
        // 10,000-interface answer parses whole (the daemon's worst case).
        let mut statuses = serde_json::Map::new();
        for i in 0..10_000 {
            statuses.insert(
                format!("Ethernet{}/{}", i / 4 + 1, i % 4 + 1),
                json!({"linkStatus": if i % 2 == 0 { "connected" } else { "notconnect" },
                       "description": "", "interfaceType": "100GBASE-CR4", "bandwidth": 100000000000u64,
                       "lineProtocolStatus": "up", "vlanInformation": {"interfaceMode": "routed"}}),
            );
        }
        let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": "1",
            "result": [{"interfaceStatuses": statuses}]}))
        .unwrap();
        let results = crate::parse_response(&body, &["show interfaces status connected"]).unwrap();
        let rows = parse_interfaces_status(&results[0]).unwrap();
        assert_eq!(rows.len(), 10_000);
        assert_eq!(rows.iter().filter(|r| r.is_connected()).count(), 5_000);
        assert_eq!(rows[0].name, "Ethernet1/1");
        assert_eq!(rows[9_999].name, "Ethernet2500/4");
    }

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    #[test]
    fn pyntc_interfaces_status_veos_4_14() {
        // pyntc wraps the result: {command, result, encoding}.
        let wrapper = fixture(include_str!(
            "../tests/fixtures/pyntc_show_interfaces_status_veos_4.14.7M.json"
        ));
        assert_eq!(wrapper["command"], "show interfaces status");
        let rows = parse_interfaces_status(&wrapper["result"]).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Ethernet1",
                "Ethernet2",
                "Ethernet3",
                "Ethernet4",
                "Ethernet5",
                "Ethernet6",
                "Ethernet7",
                "Ethernet8",
                "Management1"
            ]
        );
        assert!(rows.iter().all(InterfaceStatus::is_connected));
        let ma1 = rows.iter().find(|r| r.name == "Management1").unwrap();
        assert_eq!(ma1.interface_mode.as_deref(), Some("routed"));
        assert_eq!(ma1.interface_type.as_deref(), Some("10/100/1000"));
        assert_eq!(ma1.bandwidth, Some(1_000_000_000));
        assert_eq!(
            ma1.line_protocol_status, None,
            "4.14 has no lineProtocolStatus"
        );
        let et8 = &rows[7];
        assert_eq!(et8.interface_mode.as_deref(), Some("bridged"));
        assert_eq!(et8.description, "");
        assert_eq!(et8.bandwidth, Some(10_000_000_000));
    }

    #[test]
    fn interfaces_status_requires_link_status_but_nothing_else() {
        let rows = parse_interfaces_status(&json!({"interfaceStatuses": {
            "Ethernet10": {"linkStatus": "notconnect", "lineProtocolStatus": "down", "newField": 1},
            "Ethernet9": {"linkStatus": "connected"}
        }}))
        .unwrap();
        assert_eq!(rows[0].name, "Ethernet9");
        assert!(rows[0].is_connected());
        assert!(!rows[1].is_connected());
        assert_eq!(rows[1].line_protocol_status.as_deref(), Some("down"));

        let err =
            parse_interfaces_status(&json!({"interfaceStatuses": {"Ethernet1": {}}})).unwrap_err();
        assert!(
            err.to_string()
                .contains("a `linkStatus` string for Ethernet1"),
            "{err}"
        );
        let err = parse_interfaces_status(&json!({"interfaces": {}})).unwrap_err();
        assert!(err.to_string().contains("`interfaceStatuses`"), "{err}");
    }

    #[test]
    fn napalm_ip_interface_old_schema_with_secondaries() {
        let result = fixture(include_str!(
            "../tests/fixtures/napalm_show_ip_interface_vlan_secondary.json"
        ));
        let rows = parse_ip_interfaces(&result).unwrap();
        assert_eq!(rows.len(), 2);
        let et36 = &rows[0];
        assert_eq!(et36.name, "Ethernet36");
        assert_eq!(et36.address.unwrap().to_string(), "172.17.17.66/25");
        assert!(et36.secondaries.is_empty());
        assert_eq!(et36.description, "BNIX [T=pxEU]");
        assert_eq!(et36.unnumbered, None);
        let vlan = &rows[1];
        assert_eq!(vlan.name, "Vlan100");
        assert_eq!(
            vlan.address,
            Some(Ipv4Prefix {
                address: Ipv4Addr::new(192, 168, 233, 1),
                prefix_len: 24
            })
        );
        let secondaries: Vec<String> = vlan.secondaries.iter().map(ToString::to_string).collect();
        assert_eq!(secondaries, ["192.168.234.1/24", "192.168.235.1/24"]);
        assert_eq!(vlan.line_protocol_status.as_deref(), Some("up"));
        assert_eq!(vlan.interface_status.as_deref(), Some("connected"));
        assert_eq!(vlan.mtu, Some(1500));
    }

    #[test]
    fn napalm_ip_interface_new_schema_ceos() {
        let result = fixture(include_str!(
            "../tests/fixtures/napalm_show_ip_interface_newschema_ceos.json"
        ));
        let rows = parse_ip_interfaces(&result).unwrap();
        assert_eq!(rows.len(), 1);
        let ma0 = &rows[0];
        assert_eq!(ma0.name, "Management0");
        assert_eq!(ma0.address.unwrap().to_string(), "172.20.20.2/24");
        assert!(ma0.secondaries.is_empty());
        assert_eq!(ma0.unnumbered, None);
        assert_eq!(ma0.mtu, Some(1500));
        assert_eq!(ma0.line_protocol_status.as_deref(), Some("up"));
    }

    #[test]
    fn unnumbered_is_read_from_every_plausible_place() {
        let zero = json!({"address": "0.0.0.0", "maskLen": 0});
        let shapes = [
            // new schema: interfaceAddressBrief mirrors `show ip interface brief`
            json!({"interfaceAddressBrief": {"ipAddr": zero, "unnumberedIntf": "Loopback0"},
                   "interfaceAddress": {"primaryIp": zero, "secondaryIpsOrderedList": []}}),
            // `show ip interface brief` as in ANTA's test data
            json!({"interfaceAddress": {"ipAddr": zero, "unnumberedIntf": "Loopback0"}}),
            json!({"interfaceAddress": {"primaryIp": zero}, "unnumberedIntf": "Loopback0"}),
        ];
        for shape in shapes {
            let rows = parse_ip_interfaces(&json!({"interfaces": {"Ethernet3": shape}})).unwrap();
            assert_eq!(rows[0].unnumbered.as_deref(), Some("Loopback0"), "{shape}");
            assert_eq!(rows[0].address, None, "0.0.0.0/0 is no address: {shape}");
        }
        let rows = parse_ip_interfaces(&json!({"interfaces": {"Ethernet3": {
            "interfaceAddress": {"ipAddr": {"address": "10.0.0.0", "maskLen": 31}, "unnumberedIntf": ""}}}}))
        .unwrap();
        assert_eq!(rows[0].unnumbered, None);
        assert_eq!(rows[0].address.unwrap().to_string(), "10.0.0.0/31");
    }

    #[test]
    fn ip_interface_rejects_bad_addresses_with_the_interface_name() {
        let err = parse_ip_interfaces(&json!({"interfaces": {"Ethernet1": {
            "interfaceAddress": {"primaryIp": {"address": "10.0.0.300", "maskLen": 31}}}}}))
        .unwrap_err();
        assert!(
            err.to_string().contains("an IPv4 address for Ethernet1"),
            "{err}"
        );
        let err = parse_ip_interfaces(&json!({"interfaces": {"Ethernet1": {
            "interfaceAddress": {"primaryIp": {"address": "10.0.0.1", "maskLen": 33}}}}}))
        .unwrap_err();
        assert!(
            err.to_string().contains("maskLen 0..=32 for Ethernet1"),
            "{err}"
        );
    }

    #[test]
    fn old_schema_secondary_ips_object_is_read() {
        let rows = parse_ip_interfaces(&json!({"interfaces": {"Vlan5": {"interfaceAddress": {
            "primaryIp": {"address": "10.5.0.1", "maskLen": 24},
            "secondaryIps": {"10.6.0.1": {"address": "10.6.0.1", "maskLen": 24}}}}}}))
        .unwrap();
        assert_eq!(rows[0].secondaries.len(), 1);
        assert_eq!(rows[0].secondaries[0].to_string(), "10.6.0.1/24");
    }

    #[test]
    fn napalm_version_dcs7010t_4_20_i386() {
        let result = fixture(include_str!(
            "../tests/fixtures/napalm_show_version_dcs7010t_4.20.7M_i386.json"
        ));
        let version = parse_version(&result).unwrap();
        assert_eq!(
            version,
            Version {
                model: Some("DCS-7010T-48-R".into()),
                serial: Some("SSJ12345678".into()),
                system_mac: Some("28:99:3a:23:92:09".into()),
                architecture: Some("i386".into()),
                version: Some("4.20.7M".into()),
                hardware_revision: Some("12.00".into()),
                manufacturer: None,
            }
        );
    }

    #[test]
    fn napalm_version_ceoslab_4_30_x86_64() {
        let result = fixture(include_str!(
            "../tests/fixtures/napalm_show_version_ceoslab_4.30.0F_x86_64.json"
        ));
        let version = parse_version(&result).unwrap();
        assert_eq!(version.model.as_deref(), Some("cEOSLab"));
        assert_eq!(
            version.serial.as_deref(),
            Some("DE5B7D98C24A207BE70876CC0AD5546F")
        );
        assert_eq!(version.system_mac.as_deref(), Some("00:1c:73:78:8e:81"));
        assert_eq!(version.architecture.as_deref(), Some("x86_64"));
        assert_eq!(
            version.version.as_deref(),
            Some("4.30.0F-31408673.4300F (engineering build)")
        );
        assert_eq!(
            version.hardware_revision, None,
            "cEOS reports an empty revision"
        );
        assert_eq!(version.manufacturer.as_deref(), Some("Arista"));
    }

    #[test]
    fn anta_version_inside_the_error_envelope_4_31_i686() {
        let envelope = fixture(include_str!(
            "../tests/fixtures/anta_eapi_error_1002_response_ceoslab_4.31.1F_jsonrpc_envelope.json"
        ));
        let version = parse_version(&envelope["error"]["data"][0]).unwrap();
        assert_eq!(version.architecture.as_deref(), Some("i686"));
        assert_eq!(version.system_mac.as_deref(), Some("00:1c:73:2e:7b:a3"));
        assert_eq!(
            version.serial.as_deref(),
            Some("5E9D49D20F09DA471333DD835835FD1A")
        );
    }

    #[test]
    fn version_tolerates_an_empty_object_but_not_a_non_object() {
        assert_eq!(parse_version(&json!({})).unwrap(), Version::default());
        let err = parse_version(&json!([1])).unwrap_err();
        assert!(
            err.to_string()
                .contains("to `show version`: expected a JSON object"),
            "{err}"
        );
    }

    #[test]
    fn ansible_management_api_http_commands() {
        let result = fixture(include_str!(
            "../tests/fixtures/ansible_show_management_api_http_commands.json"
        ));
        let api = parse_management_api(&result).unwrap();
        assert!(api.enabled);
        assert!(api.unix_socket_running);
        assert!(api.local_http_running);
        assert_eq!(api.local_http_port, Some(8080));
        assert_eq!(api.urls.len(), 6);
        assert_eq!(api.urls[4], "Unix Socket : unix:/var/run/command-api.sock");
        assert_eq!(
            api.urls[5],
            "Local       : http://localhost:8080/command-api"
        );
    }
}
