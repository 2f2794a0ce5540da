//! Decoding requests and encoding replies on top of dhcproto.
//!
//! Before dhcproto sees a packet, its options are walked here and only those the
//! server reads are kept (53, 50, 54, 55, 60, 61), with their lengths checked and
//! split options joined (RFC 3396); option 82 is kept raw, to be echoed. dhcproto's
//! decoders for other options assert on lengths (panics in debug builds, misreads
//! in release), and a server should not depend on parsing what it never uses.
//! Options in an overloaded sname/file field (option 52) are not read: clients
//! put the ones above in the options field.
//!
//! dhcproto encodes options in code order; RFC 2131 servers are expected to put
//! the options a client asked for in the order of its option 55, and some clients
//! (old ROMs) only read the first few. So replies are encoded here: the header by
//! dhcproto, then the options one by one in our order, then padding to the 300
//! bytes of a BOOTP packet, which dhcproto does not do.

use crate::lease::{ClientId, HwAddr};
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use std::net::Ipv4Addr;

/// BOOTP's minimum message size; RFC 1542 relays may drop anything shorter.
pub const MIN_REPLY_LEN: usize = 300;

/// A request that decoded and has what the core needs.
#[derive(Debug, Clone)]
pub struct Request {
    /// The decoded message.
    pub msg: Message,
    /// Option 53.
    pub msg_type: MessageType,
    /// Option 61, else htype and chaddr.
    pub client: ClientId,
    /// chaddr (its first hlen bytes).
    pub mac: HwAddr,
    /// Option 60 payload.
    pub vendor_class: Option<Vec<u8>>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55, as raw codes.
    pub param_list: Vec<u8>,
    /// Option 82 as received, echoed in replies (RFC 3046).
    pub relay_info: Option<Vec<u8>>,
}

/// Why a packet was not taken as a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// dhcproto could not decode it.
    #[error("undecodable packet ({len} bytes): {why}")]
    Decode {
        /// Packet length.
        len: usize,
        /// The decoder's message.
        why: String,
    },
    /// Not a BOOTREQUEST (a reply, or a bad op code).
    #[error("not a BOOTREQUEST")]
    NotRequest,
    /// The magic cookie is missing: BOOTP, not DHCP.
    #[error("no DHCP magic cookie (plain BOOTP is not served)")]
    NoMagic,
    /// No option 53.
    #[error("no DHCP message type (option 53)")]
    NoMessageType,
    /// hlen above 16 or zero.
    #[error("bad hardware address length {0}")]
    BadHlen(u8),
    /// The options field does not parse.
    #[error("bad options: {0}")]
    BadOptions(String),
}

/// Options the server reads.
const READ: [u8; 6] = [53, 50, 54, 55, 60, 61];
const RELAY_INFO: u8 = 82;
const HEADER: usize = 240;

/// Rebuilds the packet with only the options the server reads, checked; returns
/// it and the raw option 82.
fn sanitize(bytes: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), PacketError> {
    if bytes.len() < HEADER {
        return Err(PacketError::Decode {
            len: bytes.len(),
            why: "shorter than the 240-byte header and cookie".into(),
        });
    }
    let bad = |m: String| PacketError::BadOptions(m);
    let mut kept: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut relay: Option<Vec<u8>> = None;
    let mut i = HEADER;
    while i < bytes.len() {
        let code = bytes[i];
        match code {
            0 => {
                i += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let Some(&len) = bytes.get(i + 1) else {
            return Err(bad(format!("option {code} has no length byte")));
        };
        let start = i + 2;
        let end = start + usize::from(len);
        let Some(value) = bytes.get(start..end) else {
            return Err(bad(format!(
                "option {code} claims {len} bytes, {} remain",
                bytes.len().saturating_sub(start)
            )));
        };
        // RFC 3396: an option that appears more than once is one long option.
        if code == RELAY_INFO {
            relay.get_or_insert_with(Vec::new).extend_from_slice(value);
        } else if READ.contains(&code) {
            match kept.iter_mut().find(|(c, _)| *c == code) {
                Some((_, v)) => v.extend_from_slice(value),
                None => kept.push((code, value.to_vec())),
            }
        }
        i = end;
    }
    let mut out = bytes[..HEADER].to_vec();
    for (code, value) in &kept {
        let ok = match code {
            53 => value.len() == 1 && (1..=8).contains(&value[0]),
            50 | 54 => value.len() == 4,
            _ => !value.is_empty() && value.len() <= 255,
        };
        if !ok {
            return Err(bad(format!(
                "option {code} has an invalid length {} or value",
                value.len()
            )));
        }
        out.push(*code);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }
    out.push(255);
    if relay
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.len() > 255)
    {
        relay = None;
    }
    Ok((out, relay))
}

const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Decodes a packet received on port 67.
pub fn parse(bytes: &[u8]) -> Result<Request, PacketError> {
    // Checked before decoding: dhcproto's chaddr() slices by hlen and would panic.
    if bytes.len() >= 3 && (bytes[2] == 0 || bytes[2] > 16) {
        return Err(PacketError::BadHlen(bytes[2]));
    }
    if bytes.len() >= 240 && bytes[236..240] != MAGIC {
        return Err(PacketError::NoMagic);
    }
    let (clean, relay_info) = sanitize(bytes)?;
    let msg = Message::decode(&mut Decoder::new(&clean)).map_err(|e| PacketError::Decode {
        len: bytes.len(),
        why: e.to_string(),
    })?;
    if msg.opcode() != Opcode::BootRequest {
        return Err(PacketError::NotRequest);
    }
    let msg_type = msg.opts().msg_type().ok_or(PacketError::NoMessageType)?;
    let htype = u8::from(msg.htype());
    let chaddr = msg.chaddr().to_vec();
    let client = match msg.opts().get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => ClientId::from_option61(id),
        _ => ClientId::from_hardware(htype, &chaddr),
    };
    let vendor_class = match msg.opts().get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(v)) => Some(v.clone()),
        _ => None,
    };
    let requested_ip = match msg.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(a)) => Some(*a),
        _ => None,
    };
    let server_id = match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    };
    let param_list = match msg.opts().get(OptionCode::ParameterRequestList) {
        Some(DhcpOption::ParameterRequestList(l)) => l.iter().map(|c| u8::from(*c)).collect(),
        _ => Vec::new(),
    };
    Ok(Request {
        mac: HwAddr::new(&chaddr),
        msg,
        msg_type,
        client,
        vendor_class,
        requested_ip,
        server_id,
        param_list,
        relay_info,
    })
}

/// Encodes a reply to `req`: header fields copied as RFC 2131 table 3 says,
/// option 53 and 54 first, then `options` ordered by the client's option 55
/// (options it did not ask for follow in the order given), then option 82 echoed
/// back, then End, then padding to [`MIN_REPLY_LEN`].
pub fn encode_reply(
    req: &Request,
    msg_type: MessageType,
    server_id: Ipv4Addr,
    yiaddr: Ipv4Addr,
    options: Vec<DhcpOption>,
) -> Vec<u8> {
    let q = &req.msg;
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(q.htype())
        .set_xid(q.xid())
        .set_flags(q.flags())
        .set_giaddr(q.giaddr())
        .set_chaddr(q.chaddr())
        .set_yiaddr(yiaddr)
        .set_siaddr(Ipv4Addr::UNSPECIFIED)
        .set_secs(0)
        .set_hops(0);
    // RFC 2131 table 3: ciaddr is echoed in ACKs to INFORM/renewals, zero otherwise.
    if msg_type == MessageType::Ack {
        m.set_ciaddr(q.ciaddr());
    } else {
        m.set_ciaddr(Ipv4Addr::UNSPECIFIED);
    }
    m.set_opts(Default::default());

    let mut buf = Vec::with_capacity(MIN_REPLY_LEN + 64);
    let mut e = Encoder::new(&mut buf);
    // Header and cookie only: the option map is empty.
    m.encode(&mut e).expect("encoding into a Vec cannot fail");
    let mut ordered: Vec<DhcpOption> = Vec::with_capacity(options.len() + 3);
    ordered.push(DhcpOption::MessageType(msg_type));
    ordered.push(DhcpOption::ServerIdentifier(server_id));
    let mut rest = options;
    for code in &req.param_list {
        if let Some(i) = rest
            .iter()
            .position(|o| u8::from(OptionCode::from(o)) == *code)
        {
            ordered.push(rest.remove(i));
        }
    }
    ordered.extend(rest);
    for o in &ordered {
        // An option too long to encode (a misconfigured URL over 255 bytes) is left
        // out rather than sending a broken packet; config validation prevents it.
        let mut one = Vec::new();
        if o.encode(&mut Encoder::new(&mut one)).is_ok() {
            buf.extend_from_slice(&one);
        }
    }
    // RFC 3046: option 82 goes back as it came, last before End.
    if let Some(relay) = &req.relay_info {
        buf.push(RELAY_INFO);
        buf.push(relay.len() as u8);
        buf.extend_from_slice(relay);
    }
    buf.push(255);
    if buf.len() < MIN_REPLY_LEN {
        buf.resize(MIN_REPLY_LEN, 0);
    }
    buf
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dhcproto::v4::Flags;

    /// Builds a client packet the way a leaf would send it.
    pub fn client_packet(
        msg_type: MessageType,
        mac: [u8; 6],
        vendor: Option<&str>,
        extra: Vec<DhcpOption>,
    ) -> Vec<u8> {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest)
            .set_xid(0x1234_5678)
            .set_chaddr(&mac)
            .set_flags(Flags::default());
        m.opts_mut().insert(DhcpOption::MessageType(msg_type));
        if let Some(v) = vendor {
            m.opts_mut()
                .insert(DhcpOption::ClassIdentifier(v.as_bytes().to_vec()));
        }
        for o in extra {
            m.opts_mut().insert(o);
        }
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        buf
    }

    #[test]
    fn reply_is_padded_and_options_follow_option55() {
        let pkt = client_packet(
            MessageType::Discover,
            [2, 0, 0, 0, 0, 1],
            Some("Arista;X;1;S"),
            vec![DhcpOption::ParameterRequestList(vec![
                OptionCode::BootfileName,
                OptionCode::Router,
                OptionCode::SubnetMask,
            ])],
        );
        let req = parse(&pkt).unwrap();
        let out = encode_reply(
            &req,
            MessageType::Offer,
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(10, 0, 0, 1),
            vec![
                DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 254)),
                DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 0, 0)]),
                DhcpOption::AddressLeaseTime(60),
                DhcpOption::BootfileName(b"http://x/b".to_vec()),
            ],
        );
        assert!(out.len() >= MIN_REPLY_LEN);
        // Walk the options as a client would.
        let mut codes = Vec::new();
        let mut i = 240;
        while i < out.len() && out[i] != 255 {
            codes.push(out[i]);
            i += 2 + out[i + 1] as usize;
        }
        assert_eq!(codes, vec![53, 54, 67, 3, 1, 51]);
        let back = Message::decode(&mut Decoder::new(&out)).unwrap();
        assert_eq!(back.yiaddr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(back.xid(), 0x1234_5678);
        assert_eq!(back.chaddr(), &[2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn bad_hlen_is_an_error_not_a_panic() {
        let mut pkt = client_packet(MessageType::Discover, [2, 0, 0, 0, 0, 1], None, vec![]);
        pkt[2] = 200;
        assert_eq!(parse(&pkt).unwrap_err(), PacketError::BadHlen(200));
        assert!(matches!(
            parse(&pkt[..10]),
            Err(PacketError::BadHlen(_)) | Err(PacketError::Decode { .. })
        ));
    }

    #[test]
    fn truncated_and_bootp_packets_are_errors() {
        let pkt = client_packet(MessageType::Discover, [2, 0, 0, 0, 0, 1], None, vec![]);
        for n in [0, 1, 5, 100, 235, 239] {
            assert!(parse(&pkt[..n]).is_err(), "len {n}");
        }
        let mut bootp = pkt.clone();
        bootp[236] = 0;
        assert_eq!(parse(&bootp).unwrap_err(), PacketError::NoMagic);
    }
}
