//! A TCP proxy on loopback in front of the apiserver, to hold or cut one client's connections (TLS passes
//! through untouched; the apiserver's certificate is valid for 127.0.0.1 on any port).
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward.
    Pass,
    /// Accept and wait (nothing is forwarded until the mode changes).
    Hold,
    /// Drop every connection, open or new.
    Cut,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr, mode: Mode) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, _) = watch::channel(mode);
        let tx = Arc::new(tx);
        let modes = tx.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut rx = modes.subscribe();
                tokio::spawn(async move {
                    let Ok(mode) = rx.wait_for(|m| *m != Mode::Hold).await.map(|m| *m) else {
                        return;
                    };
                    if mode == Mode::Cut {
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut a, mut b) = (inbound, outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        _ = rx.wait_for(|m| *m == Mode::Cut) => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, mode: tx, task })
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Cut);
        self.task.abort();
    }
}
