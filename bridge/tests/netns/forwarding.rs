//! `enable_forwarding` acts on the calling thread's namespace only.

use std::{
    fs::{self, File},
    os::unix::fs::FileExt,
};

use ztps_bridge::enable_forwarding;

use crate::common::in_new_netns;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
const ALL_FORWARDING: &str = "/proc/sys/net/ipv4/conf/all/forwarding";

fn read_at_start(file: &File) -> String {
    let mut buf = [0u8; 16];
    let n = file.read_at(&mut buf, 0).expect("read sysctl");
    String::from_utf8_lossy(&buf[..n]).trim().to_owned()
}

fn read(path: &str) -> String {
    fs::read_to_string(path)
        .expect("read sysctl")
        .trim()
        .to_owned()
}

#[test]
fn forwarding_is_turned_on_once_in_this_namespace_only() {
    // Opened here, in the initial namespace: a /proc/sys/net file stays bound
    // to the namespace it was opened in, so reading it later from inside the
    // test namespace still shows the host's value.
    let host_file = File::open(IP_FORWARD).expect("open host ip_forward");
    let host_value = read_at_start(&host_file);

    let (inner_file, inner_value) = (host_file.try_clone().expect("dup"), host_value.clone());
    in_new_netns(move || async move {
        let (host_file, host_value) = (inner_file, inner_value);
        // A new namespace copies the host's value; start from off.
        fs::write(IP_FORWARD, "0\n").expect("set ip_forward 0 in the test namespace");
        assert_eq!(read(ALL_FORWARDING), "0", "the kernel aliases the two");
        assert_eq!(
            read_at_start(&host_file),
            host_value,
            "the host's value changed"
        );

        let report = enable_forwarding().expect("enable");

        assert_eq!(
            (report.ip_forward_before, report.all_forwarding_before),
            (0, 0)
        );
        assert!(report.ip_forward_written, "{report:?}");
        // Writing ip_forward already turned conf.all.forwarding on.
        assert!(!report.all_forwarding_written, "{report:?}");
        assert!(report.changed());
        assert_eq!(
            report.to_string(),
            "IPv4 forwarding turned on: net.ipv4.ip_forward 0 -> 1, net.ipv4.conf.all.forwarding 0 -> 1"
        );
        assert_eq!(read(IP_FORWARD), "1");
        assert_eq!(read(ALL_FORWARDING), "1");
        assert_eq!(
            read_at_start(&host_file),
            host_value,
            "the host's value changed"
        );

        let again = enable_forwarding().expect("enable again");
        assert!(!again.changed(), "{again:?}");
        assert_eq!(
            (again.ip_forward_before, again.all_forwarding_before),
            (1, 1)
        );
    });

    assert_eq!(read_at_start(&host_file), host_value);
}
