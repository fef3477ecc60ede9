//! What the tests share: a listener for axum that counts the connections it accepted and the
//! ones still open, and a bounded wait.
#![allow(dead_code, reason = "each test file uses a part")]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The connections a [`CountingListener`] accepted, and how many of them are still open (a
/// connection is open until axum drops its stream).
#[derive(Debug, Default)]
pub(crate) struct Connections {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

impl Connections {
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// A tokio `TcpListener` whose accepted streams count themselves open until dropped. axum 0.8's
/// `serve` takes any `Listener`.
#[derive(Debug)]
pub(crate) struct CountingListener {
    inner: TcpListener,
    connections: Arc<Connections>,
}

impl CountingListener {
    pub(crate) async fn bind() -> io::Result<(Self, Arc<Connections>)> {
        let inner = TcpListener::bind("127.0.0.1:0").await?;
        let connections = Arc::new(Connections::default());
        Ok((CountingListener { inner, connections: connections.clone() }, connections))
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    self.connections.accepted.fetch_add(1, Ordering::SeqCst);
                    self.connections.open.fetch_add(1, Ordering::SeqCst);
                    let counted =
                        CountedStream { inner: stream, connections: self.connections.clone() };
                    return (counted, address);
                }
                // Out of file descriptors, say: wait and try again, as axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted stream: open until dropped.
#[derive(Debug)]
pub(crate) struct CountedStream {
    inner: TcpStream,
    connections: Arc<Connections>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Waits (polling every 10 ms, for at most `limit`) until `done` holds; whether it did. For what
/// happens outside klaw's scopes, on tokio's thread, which nothing here can await. The bound
/// only keeps a broken test from hanging: it asserts nothing about speed.
pub(crate) async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + limit;
    while !done() {
        if Instant::now() > give_up {
            return false;
        }
        klaw::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Counts values alive: each [`Alive`] adds one while it lives.
#[derive(Debug, Default)]
pub(crate) struct AliveCount(AtomicUsize);

impl AliveCount {
    pub(crate) fn enter(self: &Arc<Self>) -> Alive {
        self.0.fetch_add(1, Ordering::SeqCst);
        Alive(self.clone())
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One of an [`AliveCount`]: dropped when its future ends or is cancelled.
#[derive(Debug)]
pub(crate) struct Alive(Arc<AliveCount>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}
