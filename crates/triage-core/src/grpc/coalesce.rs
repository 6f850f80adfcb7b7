//! Accepted gRPC connections that send a small unary response in one write.
//!
//! h2 sends a DATA frame of 256 bytes or more from the caller's buffer (vectored) on a
//! vectored connection, and must write it out before it can queue the next frame: a unary
//! response of that size (a Route answer with its classification is ~280 bytes) left in two
//! writes, HEADERS + DATA and then the 10-byte trailers, each a wakeup at both ends (strace
//! of the gateway: 2 writev per Route on the caller's socket). A connection that reports
//! itself not vectored raises h2's threshold to 1 KiB, so such a response is copied into
//! h2's buffer with its trailers and leaves in one write. The buffer here keeps a larger
//! response at the two writes it took before: h2 then writes the frame head and the
//! payload separately, and both land here before the flush sends them together.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes gathered before a write goes out on its own: a reply of a few KiB plus its frame
/// heads. Allocated per connection, and gRPC callers keep few connections.
const CAPACITY: usize = 8 * 1024;

/// A server connection whose writes are gathered until h2 flushes.
#[derive(Debug)]
pub struct Coalescing<T: AsyncWrite> {
    inner: BufWriter<T>,
}

impl<T: AsyncWrite> Coalescing<T> {
    pub fn new(io: T) -> Self {
        Self { inner: BufWriter::with_capacity(CAPACITY, io) }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalescing<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalescing<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// The point of the wrapper (see the module comment).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<T: Connected + AsyncWrite> Connected for Coalescing<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.get_ref().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn writes_leave_together_on_flush_and_the_peer_address_is_kept() {
        let (mut peer, server) = pair().await;
        let peer_addr = peer.local_addr().unwrap();
        let mut io = Coalescing::new(server);
        assert!(!io.is_write_vectored(), "h2 must see a non-vectored connection");
        assert_eq!(io.connect_info().remote_addr(), Some(peer_addr));

        io.write_all(b"headers+data|").await.unwrap();
        io.write_all(b"trailers").await.unwrap();
        let mut buf = [0u8; 64];
        // Nothing reaches the socket before the flush.
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), peer.read(&mut buf)).await;
        assert!(early.is_err(), "bytes left before the flush: {early:?}");
        io.flush().await.unwrap();
        let n = peer.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"headers+data|trailers");

        // Reads pass through.
        peer.write_all(b"request").await.unwrap();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"request");
    }

    #[tokio::test]
    async fn a_write_larger_than_the_buffer_still_arrives_whole() {
        let (mut peer, server) = pair().await;
        let mut io = Coalescing::new(server);
        let big: Vec<u8> = (0..3 * CAPACITY).map(|i| (i % 251) as u8).collect();
        io.write_all(b"head").await.unwrap();
        io.write_all(&big).await.unwrap();
        io.flush().await.unwrap();
        io.shutdown().await.unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &big[..]);
    }
}
