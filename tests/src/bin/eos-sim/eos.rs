//! The EOS model: `runCmds` as EOS runs it (in order, stopping at the first
//! failure, config mode), and every `show` command eos-sim knows, rendered in the
//! shapes of real EOS captures (`eapi/tests/fixtures`).

use crate::args::Identity;
use crate::kernel::{eos_name, kernel_links, KernelLink};
use crate::lldp::Lldp;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// The output format a `runCmds` call asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Structured output.
    Json,
    /// `{"output": "<CLI text>"}`.
    Text,
}

/// What running a command list gave: the results or the JSON-RPC error object, and
/// the commands that ran in config mode (logged either way).
pub struct Ran {
    /// The results, or the JSON-RPC error object (with the results so far).
    pub reply: Result<Vec<Value>, Value>,
    /// The commands that ran in config mode.
    pub config: Vec<String>,
}

/// A parsed `runCmds` call.
pub struct RunCmds {
    /// The JSON-RPC id, echoed.
    pub id: Value,
    /// The commands, in order.
    pub cmds: Vec<String>,
    /// The output format asked for.
    pub format: Format,
}

/// The simulated switch: its identity, how eAPI is served, its LLDP neighbours.
pub struct Eos {
    /// `show version`.
    pub identity: Identity,
    /// EOS name -> the interface it borrows its address from.
    pub unnumbered: BTreeMap<String, String>,
    /// The unix socket eAPI is served on.
    pub unix: Option<PathBuf>,
    /// The bound HTTP address (port 0 resolved), for `show management api http-commands`.
    pub http_bound: Mutex<Option<SocketAddr>>,
    /// `show lldp neighbors`.
    pub lldp: Lldp,
    /// Boot time, for `uptime`.
    pub started: Instant,
}

impl Eos {
    /// error carries the results so far and then `{"errors": [...]}`.
    pub fn run_cmds(&self, cmds: &[String], format: Format) -> Ran {
        let mut results = Vec::with_capacity(cmds.len());
        let mut config = Vec::new();
        let mut in_config = false;
        for (index, cmd) in cmds.iter().enumerate() {
            let tokens: Vec<String> = cmd
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            let line = tokens.join(" ");
            let result = if in_config && !line.starts_with("show ") {
                config.push(cmd.trim().to_owned());
                if line == "end" {
                    in_config = false;
                }
                Ok(empty(format))
            } else {
                match line.as_str() {
                    "enable" => Ok(empty(format)),
                    "configure" | "configure terminal" => {
                        in_config = true;
                        config.push(cmd.trim().to_owned());
                        Ok(empty(format))
                    }
                    _ => self.show(&line, &tokens, format),
                }
            };
            match result {
                Ok(result) => results.push(result),
                Err((code, what, errors)) => {
                    let message = format!(
                        "CLI command {} of {} '{}' failed: {what}",
                        index + 1,
                        cmds.len(),
                        cmd.trim()
                    );
                    results.push(json!({ "errors": errors }));
                    let error = json!({"code": code, "message": message, "data": results});
                    return Ran {
                        reply: Err(error),
                        config,
                    };
                }
            }
        }
        Ran {
            reply: Ok(results),
            config,
        }
    }

    /// A `show` command (or an unknown one): its result, or (code, reason, errors).
    fn show(
        &self,
        line: &str,
        tokens: &[String],
        format: Format,
    ) -> Result<Value, (i64, &'static str, Vec<String>)> {
        let text = |output: String| Ok(json!({ "output": output }));
        match (line, format) {
            ("show interfaces status" | "show interfaces status connected", _) => {
                let only_connected = line.ends_with("connected");
                let links = kernel_links();
                match format {
                    Format::Json => Ok(interfaces_status_json(&links, only_connected)),
                    Format::Text => text(interfaces_status_text(&links, only_connected)),
                }
            }
            ("show ip interface", Format::Json) => Ok(self.ip_interface_json(&kernel_links())),
            ("show ip interface", Format::Text) => text(self.ip_interface_text(&kernel_links())),
            ("show version", Format::Json) => Ok(self.version_json()),
            ("show version", Format::Text) => text(self.version_text()),
            ("show lldp neighbors", Format::Json) => Ok(self.lldp.neighbors_json()),
            ("show lldp neighbors", Format::Text) => text(self.lldp.neighbors_text()),
            ("show management api http-commands", Format::Json) => Ok(self.management_api_json()),
            ("show management api http-commands", Format::Text) => text(self.management_api_text()),
            // EOS has no JSON model for `show logging`.
            ("show logging", Format::Json) => {
                Err((1003, "unconverted command", vec!["This is an unconverted command".to_owned()]))
            }
            ("show logging", Format::Text) => {
                text("Syslog logging: enabled\nLog Buffer:\nNov 21 12:00:00 eos-sim Ebra: %LINEPROTO-5-UPDOWN: Line protocol on Interface Ethernet1, changed state to up\n".to_owned())
            }
            _ => Err(invalid_input(tokens)),
        }
    }

    fn version_json(&self) -> Value {
        let id = &self.identity;
        let uptime = self.started.elapsed().as_secs_f64();
        json!({
            "mfgName": "Arista",
            "modelName": id.model,
            "hardwareRevision": id.hardware_revision,
            "serialNumber": id.serial,
            "systemMacAddress": id.system_mac,
            "hwMacAddress": "00:00:00:00:00:00",
            "configMacAddress": "00:00:00:00:00:00",
            "version": id.version,
            "architecture": id.architecture,
            "internalVersion": format!("{}-0000000.sim", id.version),
            "internalBuildId": "00000000-0000-0000-0000-000000000000",
            "imageFormatVersion": "1.0",
            "imageOptimization": "None",
            "kernelVersion": "sim",
            "bootupTimestamp": 1_700_000_000.0,
            "uptime": uptime,
            "memTotal": 2_048_000,
            "memFree": 1_024_000,
            "isIntlVersion": false
        })
    }

    fn version_text(&self) -> String {
        let id = &self.identity;
        format!(
            "Arista {}\nHardware version: {}\nSerial number: {}\nHardware MAC address: 00:00:00:00:00:00\n\
             System MAC address: {}\n\nSoftware image version: {}\nArchitecture: {}\n",
            id.model, id.hardware_revision, id.serial, id.system_mac, id.version, id.architecture
        )
    }

    fn management_api_json(&self) -> Value {
        let http = *self.http_bound.lock().unwrap();
        let mut urls = Vec::new();
        if let Some(path) = &self.unix {
            urls.push(format!("Unix Socket : unix:{}", path.display()));
        }
        if let Some(addr) = http {
            urls.push(format!("Local       : http://{addr}/command-api"));
        }
        json!({
            "enabled": true,
            "httpServer": {"running": false, "configured": false, "port": 80},
            "httpsServer": {"running": false, "configured": false, "port": 443},
            "localHttpServer": {"running": http.is_some(), "configured": http.is_some(), "port": http.map_or(8080, |a| a.port())},
            "unixSocketServer": {"running": self.unix.is_some(), "configured": self.unix.is_some()},
            "vrf": "default",
            "dscpValue": 0,
            "corsOrigins": [],
            "users": {},
            "urls": urls,
            "hitCount": 0,
            "requestCount": 0,
            "commandCount": 0,
            "bytesIn": 0,
            "bytesOut": 0,
            "executionTime": 0.0,
            "lastHitTime": 0.0
        })
    }

    fn management_api_text(&self) -> String {
        let json = self.management_api_json();
        let urls: Vec<&str> = json["urls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        format!("Enabled:            Yes\nHTTPS server:       shutdown\nHTTP server:        shutdown\nURLs\n{}\n", urls.join("\n"))
    }

    fn unnumbered_source(&self, eos_name: &str) -> Option<&str> {
        self.unnumbered
            .iter()
            .find(|(port, _)| port.eq_ignore_ascii_case(eos_name))
            .map(|(_, s)| s.as_str())
    }

    /// The new schema (`interfaceAddressBrief` + `interfaceAddress.primaryIp`), as in
    /// the cEOS capture. Interfaces with no IPv4 address are not routed: left out.
    fn ip_interface_json(&self, links: &[KernelLink]) -> Value {
        let mut interfaces = serde_json::Map::new();
        for link in links {
            let Some(name) = eos_name(&link.name) else {
                continue;
            };
            let unnumbered = self.unnumbered_source(&name);
            if link.addresses.is_empty() && unnumbered.is_none() {
                continue;
            }
            let zero = ip_json(Ipv4Addr::UNSPECIFIED, 0);
            let (primary, secondaries) = match (unnumbered, link.addresses.split_first()) {
                (None, Some(((address, len), rest))) => (
                    ip_json(*address, *len),
                    rest.iter().map(|(a, l)| ip_json(*a, *l)).collect(),
                ),
                _ => (zero.clone(), Vec::new()),
            };
            let mut brief = json!({ "ipAddr": primary });
            if let Some(source) = unnumbered {
                brief["unnumberedIntf"] = json!(source);
            }
            interfaces.insert(
                name.clone(),
                json!({
                    "name": name,
                    "lineProtocolStatus": link.line_protocol(),
                    "interfaceStatus": link.link_status(),
                    "mtu": link.mtu,
                    "interfaceAddressBrief": brief,
                    "ipv4Routable240": false,
                    "ipv4Routable0": false,
                    "enabled": link.up,
                    "description": "",
                    "interfaceAddress": {
                        "primaryIp": primary,
                        "secondaryIps": {},
                        "secondaryIpsOrderedList": secondaries,
                        "virtualIp": zero,
                        "virtualSecondaryIps": {},
                        "virtualSecondaryIpsOrderedList": [],
                        "broadcastAddress": "255.255.255.255",
                        "dhcp": false
                    },
                    "proxyArp": false,
                    "proxyArpAllowDefault": false,
                    "localProxyArp": false,
                    "gratuitousArp": false,
                    "routedAddr": link.mac.clone().unwrap_or_else(|| "00:00:00:00:00:00".into()),
                    "isVrrpBackup": false,
                    "vrf": "default",
                    "urpf": "disable",
                    "addresslessForwarding": "isInvalid",
                    "directedBroadcastEnabled": false,
                    "maxMssIngress": 0,
                    "maxMssEgress": 0
                }),
            );
        }
        json!({ "interfaces": interfaces })
    }

    fn ip_interface_text(&self, links: &[KernelLink]) -> String {
        let json = self.ip_interface_json(links);
        let mut out = String::new();
        for (name, entry) in json["interfaces"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "{name} is {}, line protocol is {} ({})\n",
                if entry["enabled"] == true {
                    "up"
                } else {
                    "administratively down"
                },
                entry["lineProtocolStatus"].as_str().unwrap_or(""),
                entry["interfaceStatus"].as_str().unwrap_or("")
            ));
            if let Some(source) = entry["interfaceAddressBrief"]["unnumberedIntf"].as_str() {
                out.push_str(&format!(
                    "  Internet address is unnumbered. Using address of {source}\n"
                ));
            } else {
                let primary = &entry["interfaceAddress"]["primaryIp"];
                out.push_str(&format!(
                    "  Internet address is {}/{}\n",
                    primary["address"].as_str().unwrap_or(""),
                    primary["maskLen"]
                ));
                for secondary in entry["interfaceAddress"]["secondaryIpsOrderedList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    out.push_str(&format!(
                        "  Secondary address is {}/{}\n",
                        secondary["address"].as_str().unwrap_or(""),
                        secondary["maskLen"]
                    ));
                }
            }
            out.push_str(&format!(
                "  Broadcast address is 255.255.255.255\n  IP MTU {} bytes\n",
                entry["mtu"]
            ));
        }
        out
    }
}

fn empty(format: Format) -> Value {
    match format {
        Format::Json => json!({}),
        Format::Text => json!({"output": ""}),
    }
}

fn ip_json(address: Ipv4Addr, len: u8) -> Value {
    json!({"address": address.to_string(), "maskLen": len})
}

/// The commands eos-sim knows, to point at the first token no command accepts.
const KNOWN: &[&str] = &[
    "enable",
    "configure terminal",
    "show interfaces status connected",
    "show ip interface",
    "show version",
    "show management api http-commands",
    "show lldp neighbors",
    "show logging",
];

/// EOS's 1002 error for a command it cannot parse: the first token that fits no
/// command, or "Incomplete command" when every token fits.
fn invalid_input(tokens: &[String]) -> (i64, &'static str, Vec<String>) {
    let matched = KNOWN
        .iter()
        .map(|known| {
            known
                .split(' ')
                .zip(tokens)
                .take_while(|(k, t)| k == t)
                .count()
        })
        .max()
        .unwrap_or(0);
    let error = match tokens.get(matched) {
        Some(token) => format!("Invalid input (at token {matched}: '{token}')"),
        None => "Incomplete command".to_owned(),
    };
    (1002, "invalid command", vec![error])
}

/// Parses a JSON-RPC `runCmds` request; the error is the JSON-RPC error object.
pub fn parse_run_cmds(body: &[u8]) -> Result<RunCmds, Value> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| json!({"code": -32700, "message": "Parse error: request is not JSON"}))?;
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("method").and_then(Value::as_str) != Some("runCmds") {
        return Err(json!({"code": -32601, "message": "Method not found: expected runCmds"}));
    }
    let params = request.get("params").unwrap_or(&Value::Null);
    let invalid = |why: &str| json!({"code": -32602, "message": format!("Invalid params: {why}")});
    let cmds = params
        .get("cmds")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`cmds` must be a list"))?
        .iter()
        .map(|c| {
            c.as_str()
                .or_else(|| c.get("cmd").and_then(Value::as_str))
                .map(str::to_owned)
        })
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| invalid("each command must be a string or {\"cmd\": ...}"))?;
    let format = match params
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" => Format::Json,
        "text" => Format::Text,
        other => return Err(invalid(&format!("unknown format {other:?}"))),
    };
    match params.get("version") {
        Some(v) if v == 1 || v == "latest" => {}
        _ => return Err(invalid("`version` must be 1 or \"latest\"")),
    }
    Ok(RunCmds { id, cmds, format })
}

fn interfaces_status_entries(
    links: &[KernelLink],
    only_connected: bool,
) -> Vec<(String, &KernelLink)> {
    links
        .iter()
        .filter_map(|link| Some((eos_name(&link.name)?, link)))
        .filter(|(name, _)| !name.starts_with("Loopback"))
        .filter(|(_, link)| !only_connected || link.link_status() == "connected")
        .collect()
}

/// As in the vEOS capture, plus `lineProtocolStatus` as newer releases report.
fn interfaces_status_json(links: &[KernelLink], only_connected: bool) -> Value {
    let mut statuses = serde_json::Map::new();
    for (name, link) in interfaces_status_entries(links, only_connected) {
        let (interface_type, bandwidth): (&str, u64) = match name.as_str() {
            n if n.starts_with("Ethernet") => ("EbraTestPhyPort", 10_000_000_000),
            n if n.starts_with("Management") => ("10/100/1000", 1_000_000_000),
            _ => ("N/A", 0),
        };
        statuses.insert(
            name,
            json!({
                "description": "",
                "duplex": "duplexFull",
                "vlanInformation": {"interfaceMode": "routed", "interfaceForwardingModel": "routed"},
                "bandwidth": bandwidth,
                "interfaceType": interface_type,
                "autoNegotiateActive": false,
                "autoNegotigateActive": false,
                "linkStatus": link.link_status(),
                "lineProtocolStatus": link.line_protocol()
            }),
        );
    }
    json!({ "interfaceStatuses": statuses })
}

fn interfaces_status_text(links: &[KernelLink], only_connected: bool) -> String {
    let mut out = String::from(
        "Port       Name   Status       Vlan     Duplex Speed  Type            Flags\n",
    );
    for (name, link) in interfaces_status_entries(links, only_connected) {
        let short = name
            .replacen("Ethernet", "Et", 1)
            .replacen("Management", "Ma", 1)
            .replacen("Port-Channel", "Po", 1)
            .replacen("Vlan", "Vl", 1);
        out.push_str(&format!(
            "{short:<10}        {:<12} routed   full   10G    EbraTestPhyPort\n",
            link.link_status()
        ));
    }
    out
}
