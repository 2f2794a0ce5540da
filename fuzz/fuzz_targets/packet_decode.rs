//! Any byte string through the packet decoder, and a reply encoded for
//! whatever decodes: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztps_dhcp::packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = packet::parse(data) {
        let out = packet::encode_reply(
            &req,
            dhcproto::v4::MessageType::Offer,
            std::net::Ipv4Addr::new(10, 0, 0, 0),
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            vec![],
        );
        assert!(out.len() >= packet::MIN_REPLY_LEN);
    }
});
