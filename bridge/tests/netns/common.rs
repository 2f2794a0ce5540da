//! The namespace runner, and fixtures that set the kernel up through
//! rtnetlink directly, independently of the code under test.

use std::{future::Future, net::Ipv4Addr, time::Duration};

use futures::TryStreamExt;
use nix::sched::{unshare, CloneFlags};
use rtnetlink::{
    packet_route::link::{LinkAttribute, LinkFlags, LinkMessage},
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth,
};

/// Upper bound on a whole test; each wait inside is bounded more tightly.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `body` on a new thread that first moves into a new network
/// namespace, on a current-thread tokio runtime (so every task, including
/// rtnetlink's connection, stays on that thread and in that namespace).
/// Panics, never passes, when the namespace cannot be created.
pub fn in_new_netns<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let name = std::thread::current()
        .name()
        .unwrap_or("netns-test")
        .to_owned();
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            if let Err(errno) = unshare(CloneFlags::CLONE_NEWNET) {
                panic!(
                    "needs root/CAP_SYS_ADMIN to create a network namespace: \
                     unshare(CLONE_NEWNET) failed: {errno}"
                );
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async {
                tokio::time::timeout(TEST_TIMEOUT, body())
                    .await
                    .expect("test did not finish within 60 s")
            });
        })
        .expect("spawn test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Bounds one await so that a broken test fails instead of hanging.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after 10 s waiting for {what}"))
}

/// Kernel set-up and inspection through rtnetlink, bypassing ztps-bridge.
pub struct Fixture {
    handle: Handle,
}

impl Fixture {
    pub fn new() -> Fixture {
        let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink socket");
        tokio::spawn(connection);
        Fixture { handle }
    }

    pub async fn add_veth(&self, name: &str, peer: &str) {
        within(
            "veth creation",
            self.handle
                .link()
                .add(LinkVeth::new(name, peer).build())
                .execute(),
        )
        .await
        .unwrap_or_else(|e| panic!("create veth {name}/{peer}: {e}"));
    }

    /// A bridge created down and without addresses.
    pub async fn add_bridge(&self, name: &str) {
        let msg = LinkMessageBuilder::<LinkBridge>::new(name).build();
        within("bridge creation", self.handle.link().add(msg).execute())
            .await
            .unwrap_or_else(|e| panic!("create bridge {name}: {e}"));
    }

    pub async fn delete(&self, name: &str) {
        let index = self.index(name).await;
        within("link deletion", self.handle.link().del(index).execute())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }

    async fn set(&self, name: &str, what: &str, msg: LinkMessage) {
        within(what, self.handle.link().set(msg).execute())
            .await
            .unwrap_or_else(|e| panic!("{what} {name}: {e}"));
    }

    pub async fn up(&self, name: &str) {
        self.set(
            name,
            "link up",
            LinkUnspec::new_with_name(name).up().build(),
        )
        .await;
    }

    pub async fn down(&self, name: &str) {
        self.set(
            name,
            "link down",
            LinkUnspec::new_with_name(name).down().build(),
        )
        .await;
    }

    pub async fn set_master(&self, port: &str, bridge: &str) {
        let master = self.index(bridge).await;
        self.set(
            port,
            "set master",
            LinkUnspec::new_with_name(port).controller(master).build(),
        )
        .await;
    }

    pub async fn no_master(&self, port: &str) {
        self.set(
            port,
            "set nomaster",
            LinkUnspec::new_with_name(port).nocontroller().build(),
        )
        .await;
    }

    pub async fn add_address(&self, name: &str, address: Ipv4Addr, prefix_len: u8) {
        let index = self.index(name).await;
        within(
            "address add",
            self.handle
                .address()
                .add(index, address.into(), prefix_len)
                .execute(),
        )
        .await
        .unwrap_or_else(|e| panic!("add {address}/{prefix_len} to {name}: {e}"));
    }

    /// `ip addr add local peer remote/32 dev name`
    pub async fn add_peer_address(&self, name: &str, local: Ipv4Addr, peer: Ipv4Addr) {
        let index = self.index(name).await;
        let mut request = self.handle.address().add(index, local.into(), 32);
        for attr in &mut request.message_mut().attributes {
            if let rtnetlink::packet_route::address::AddressAttribute::Address(a) = attr {
                *a = peer.into();
            }
        }
        within("peer address add", request.execute())
            .await
            .unwrap_or_else(|e| panic!("add {local} peer {peer} to {name}: {e}"));
    }

    pub async fn delete_address(&self, name: &str, address: Ipv4Addr, prefix_len: u8) {
        let index = self.index(name).await;
        let mut stream = std::pin::pin!(self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute());
        while let Some(msg) = within("address dump", stream.try_next())
            .await
            .expect("address dump")
        {
            let matches = msg.header.prefix_len == prefix_len
                && msg.attributes.iter().any(|a| {
                    matches!(a, rtnetlink::packet_route::address::AddressAttribute::Local(l) if *l == std::net::IpAddr::V4(address))
                });
            if matches {
                within("address delete", self.handle.address().del(msg).execute())
                    .await
                    .unwrap_or_else(|e| panic!("delete {address}/{prefix_len} from {name}: {e}"));
                return;
            }
        }
        panic!("{address}/{prefix_len} is not on {name}");
    }

    /// The raw kernel message for a link; panics if it does not exist.
    pub async fn link(&self, name: &str) -> LinkMessage {
        let mut stream = std::pin::pin!(self.handle.link().get().match_name(name).execute());
        within("link lookup", stream.try_next())
            .await
            .unwrap_or_else(|e| panic!("look up {name}: {e}"))
            .unwrap_or_else(|| panic!("no link {name}"))
    }

    pub async fn exists(&self, name: &str) -> bool {
        let mut stream = std::pin::pin!(self.handle.link().get().match_name(name).execute());
        within("link lookup", stream.try_next())
            .await
            .is_ok_and(|m| m.is_some())
    }

    pub async fn index(&self, name: &str) -> u32 {
        self.link(name).await.header.index
    }

    pub async fn mtu(&self, name: &str) -> u32 {
        self.link(name)
            .await
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
            .expect("link has an mtu")
    }

    pub async fn is_up(&self, name: &str) -> bool {
        self.link(name).await.header.flags.contains(LinkFlags::Up)
    }

    /// Index of the link's master (`IFLA_MASTER`), if enslaved.
    pub async fn master(&self, name: &str) -> Option<u32> {
        self.link(name)
            .await
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Controller(m) => Some(*m),
                _ => None,
            })
    }

    pub async fn kind(&self, name: &str) -> Option<String> {
        self.link(name)
            .await
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    rtnetlink::packet_route::link::LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                }),
                _ => None,
            })
    }
}

/// Drops CAP_NET_ADMIN from the calling thread's effective set (capabilities
/// are per thread), so netlink changes get EPERM as for an unprivileged user.
pub fn drop_net_admin_on_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and data are the layouts capget/capset expect for
    // version 3 (two data structs), and live across the calls.
    unsafe {
        assert_eq!(
            libc::syscall(
                libc::SYS_capget,
                &mut header as *mut Header,
                data.as_mut_ptr()
            ),
            0,
            "capget: {}",
            std::io::Error::last_os_error()
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()),
            0,
            "capset: {}",
            std::io::Error::last_os_error()
        );
    }
}
