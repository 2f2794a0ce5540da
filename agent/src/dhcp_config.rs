//! The DHCP core's settings from the config: the agent is the one crate that
//! knows both `ztps-config` and `ztps-dhcp`, so the conversion lives here.

use crate::config::{ClassSection, Config, HostnameTemplate, LinkPool};
use ztps_dhcp::config::{ClientClass, TemplateError};
use ztps_dhcp::plan::PoolSpec;
use ztps_dhcp::ServerConfig;

/// The DHCP core settings the config asks for.
///
/// The config's hostname templates were checked by `ztps-config` with rules at
/// least as strict as the DHCP core's; should the two ever disagree, the error
/// is returned (the daemon refuses the config) rather than the option dropped.
pub fn server_config(config: &Config) -> Result<ServerConfig, TemplateError> {
    let d = &config.dhcp;
    let mut classes = d
        .classes
        .iter()
        .map(client_class)
        .collect::<Result<Vec<_>, _>>()?;
    classes.push(ClientClass {
        name: "default".into(),
        vendor_class_prefix: d.vendor_class.to_string(),
        // Spine-served ZTP: each link's own spine address (`{server}`), unless
        // the operator set dhcp.bootfile_url (an explicit URL wins, as a
        // [[dhcp.class]]'s own does).
        bootfile_url: match (&d.bootfile_url, config.ztp.serve) {
            (Some(u), _) => Some(u.to_string()),
            (None, true) => Some(crate::ztp::bootstrap_url(config.ztp.port)),
            (None, false) => None,
        },
        dns_servers: d.dns_servers.clone(),
        domain_name: d.domain_name.as_ref().map(|n| n.to_string()),
        ntp_servers: d.ntp_servers.clone(),
        hostname: template(d.hostname.as_ref())?,
    });
    Ok(ServerConfig {
        classes,
        lease_time: d.lease_time,
        offer_hold: d.offer_hold,
        decline_quarantine: d.decline_quarantine,
        replace_after: d.replace_after,
        ..ServerConfig::default()
    })
}

fn client_class(c: &ClassSection) -> Result<ClientClass, TemplateError> {
    Ok(ClientClass {
        name: c.name.to_string(),
        vendor_class_prefix: c.vendor_class.to_string(),
        bootfile_url: c.bootfile_url.as_ref().map(|u| u.to_string()),
        dns_servers: c.dns_servers.clone(),
        domain_name: c.domain_name.as_ref().map(|n| n.to_string()),
        ntp_servers: c.ntp_servers.clone(),
        hostname: template(c.hostname.as_ref())?,
    })
}

fn template(
    t: Option<&HostnameTemplate>,
) -> Result<Option<ztps_dhcp::config::HostnameTemplate>, TemplateError> {
    t.map(|t| ztps_dhcp::config::HostnameTemplate::new(t.as_str()))
        .transpose()
}

/// A `[[dhcp.link]]` pool as the DHCP core takes it.
pub fn pool_spec(link: &LinkPool) -> PoolSpec {
    PoolSpec {
        first: link.pool.first(),
        last: link.pool.last(),
        router: link.pool.router(),
        prefix_len: link.pool.prefix_len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn classes_in_order_then_the_default() {
        let c = Config::parse(
            "[dhcp]\nbootfile_url = \"http://10.10.10.11:8080/bootstrap\"\nhostname = \"leaf-{serial}\"\nlease_time = \"2h\"\n\
             [[dhcp.class]]\nname = \"old\"\nvendor_class = \"Arista;DCS-7050\"\nbootfile_url = \"http://10.10.10.12/b\"\n\
             [[dhcp.link]]\ninterface = \"Ethernet7\"\nrange = \"10.0.7.2-10.0.7.6\"\nrouter = \"10.0.7.1\"\nprefix = 29\n",
            "f",
        )
        .unwrap();
        let s = server_config(&c).unwrap();
        let names: Vec<&str> = s.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["old", "default"]);
        assert_eq!(s.classes[1].vendor_class_prefix, "Arista");
        assert!(s.classes[1].hostname.is_some());
        assert_eq!(s.lease_time, Duration::from_secs(7200));
        let p = pool_spec(&c.dhcp.links[0]);
        assert_eq!(
            (p.prefix_len, p.router.to_string()),
            (29, "10.0.7.1".into())
        );
    }

    #[test]
    fn spine_served_ztp_points_the_default_class_at_each_links_spine() {
        let c = Config::parse("[ztp]\nserve = true\n", "f").unwrap();
        let s = server_config(&c).unwrap();
        assert_eq!(
            s.classes.last().unwrap().bootfile_url.as_deref(),
            Some("http://{server}/ztp/bootstrap")
        );
        let c = Config::parse("[ztp]\nserve = true\nport = 50080\n", "f").unwrap();
        let s = server_config(&c).unwrap();
        assert_eq!(
            s.classes.last().unwrap().bootfile_url.as_deref(),
            Some("http://{server}:50080/ztp/bootstrap")
        );
    }
}
