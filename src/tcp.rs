//! TCP services on a tokio runtime thread of their own (the status page, the NTS-KE server):
//! listening sockets bound at start, so that a failure is reported then, accept loops that
//! pause rather than spin on errors, and one stop for all of them.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Binds `addr` (an IPv6 address for IPv6 only, as the NTP sockets) and listens, non-blocking,
/// ready for tokio.
pub fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The next connection, or `None` once the service is stopped. An accept error (out of
/// descriptors, say) pauses the loop for a moment rather than let it spin.
pub async fn next(
    listener: &TcpListener,
    stopped: &mut watch::Receiver<bool>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(e) => {
                    tracing::debug!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped.changed() => return None,
        }
    }
}

/// Listeners served by `serve` on a current-thread runtime, on a thread named `name`.
pub struct TcpService {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpService {
    /// Starts the thread; `serve` gets the listeners (now tokio's) and the stop signal, and
    /// returns when the signal comes.
    pub fn start<F, Fut>(
        name: &str,
        listeners: Vec<std::net::TcpListener>,
        serve: F,
    ) -> std::io::Result<TcpService>
    where
        F: FnOnce(Vec<TcpListener>, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop, stopped) = watch::channel(false);
        let label = name.to_string();
        let thread = std::thread::Builder::new()
            .name(label.clone())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return tracing::error!("{label} runtime: {e}"),
                };
                runtime.block_on(async move {
                    let listeners = listeners
                        .into_iter()
                        .filter_map(|l| TcpListener::from_std(l).ok())
                        .collect();
                    serve(listeners, stopped).await;
                });
            })?;
        Ok(TcpService {
            stop,
            thread: Some(thread),
        })
    }

    /// Signals the stop and waits for the thread.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
