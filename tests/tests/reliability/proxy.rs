//! A TCP proxy in front of a provider server, to inject network faults the way they happen in production: the
//! server goes away (connections refused, open ones reset), or it hangs (connections accepted, nothing ever
//! answered, open ones stall), and comes back on the same address.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwards every connection to the upstream.
    Up,
    /// The port is closed: new connections are refused, open ones are reset (the server process is gone).
    Down,
    /// The server hangs: new connections are accepted and never answered, open ones stop forwarding and are never
    /// closed, not even when the mode goes back to `Up` (half-dead connections a client must time out itself).
    Hang,
}

/// See the module docs. Listens on `127.0.0.1`; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`host:port`), in mode `Up`.
    pub async fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        let upstream: SocketAddr = tokio::net::lookup_host(upstream)
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("no address for {upstream}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, rx) = watch::channel(Mode::Up);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(Some(listener), addr, upstream, rx, accepted.clone()));
        Ok(FaultProxy {
            addr,
            mode,
            accepted,
            task,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Down);
        self.task.abort();
    }
}

async fn serve(
    mut first: Option<TcpListener>,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    accepted: Arc<AtomicUsize>,
) {
    loop {
        if mode.wait_for(|m| *m != Mode::Down).await.is_err() {
            return;
        }
        let listener = match first.take() {
            Some(l) => l,
            None => loop {
                // Same port again (SO_REUSEADDR is set by tokio on Unix).
                match TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            },
        };
        let for_connections = mode.clone();
        loop {
            tokio::select! {
                a = listener.accept() => {
                    if let Ok((s, _)) = a {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(connection(s, upstream, for_connections.clone()));
                    }
                }
                r = mode.wait_for(|m| *m == Mode::Down) => {
                    if r.is_err() {
                        return;
                    }
                    break; // drops the listener: the port refuses connections
                }
            }
        }
    }
}

async fn connection(mut inbound: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let _ = inbound.set_nodelay(true);
    if *mode.borrow() == Mode::Hang {
        // Held open, never answered, until the server "goes away".
        let _ = mode.wait_for(|m| *m == Mode::Down).await;
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = outbound.set_nodelay(true);
    let hang = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
        r = mode.wait_for(|m| *m != Mode::Up) => r.is_ok_and(|m| *m == Mode::Hang),
    };
    if hang {
        // Stalled for good: both sockets stay open and silent.
        let _ = mode.wait_for(|m| *m == Mode::Down).await;
    }
    // Dropping both sockets resets the connection.
}
