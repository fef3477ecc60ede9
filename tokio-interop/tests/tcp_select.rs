//! `tokio::net` TCP traffic under `klaw::select!` with an `after` arm: the data arm wins when
//! the echo comes back, the `after` arm wins when the peer stays silent, and the read it
//! cancelled took nothing (tokio's `read` is cancel safe), so the stream goes on.
//!
//! Without `tokio` in `#[klaw::test(..)]` these fail at once: binding the tokio listener panics
//! with "there is no reactor running".

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Echoes what it reads until the peer closes.
async fn echo(listener: TcpListener) -> std::io::Result<()> {
    let (mut stream, _) = listener.accept().await?;
    let mut buffer = [0; 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..read]).await?;
    }
}

/// Reads from `stream` until `want` bytes came, or the `after` arm fires first.
async fn read_within(stream: &mut TcpStream, want: usize, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buffer = [0; 1024];
    while got.len() < want {
        klaw::select! {
            stream.read(&mut buffer) -> read => got.extend_from_slice(&buffer[..read.ok()?]),
            after(limit) => return None,
        }
    }
    Some(got)
}

#[klaw::test(tokio, workers = 2, timeout = "60s")]
async fn the_data_arm_wins_when_the_echo_comes_back() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    klaw::scope!(|s| {
        let server = s.spawn(klaw::Task::fallible(echo(listener)));
        let mut client = TcpStream::connect(address).await?;
        for round in 0..100u32 {
            let message = format!("round {round}\n");
            client.write_all(message.as_bytes()).await?;
            // A bound far beyond any loopback echo: it only keeps a broken test from hanging.
            let echoed = read_within(&mut client, message.len(), Duration::from_secs(30)).await;
            assert_eq!(echoed.as_deref(), Some(message.as_bytes()), "round {round}");
        }
        drop(client); // the server reads the end and returns
        server.await?;
        Ok(())
    })?;
    assert_eq!(klaw::Handle::current()?.live_tasks(), 0);
    Ok(())
}

#[klaw::test(tokio, workers = 2, timeout = "60s")]
async fn the_after_arm_wins_when_the_peer_stays_silent() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    // The kernel completes the handshake from its backlog: connect first, then accept.
    let mut client = TcpStream::connect(address).await?;
    let (mut server_side, _) = listener.accept().await?;

    // The peer sends nothing: the only arm that can win is `after`.
    let waited = klaw::time::now();
    let read = read_within(&mut client, 1, Duration::from_millis(50)).await;
    assert_eq!(read, None, "nothing was sent, yet something was read");
    assert!(klaw::time::now() - waited >= Duration::from_millis(50), "`after` fired early");

    // The read the `after` arm cancelled took nothing: what the peer sends now arrives whole.
    server_side.write_all(b"late").await?;
    let late = read_within(&mut client, 4, Duration::from_secs(30)).await;
    assert_eq!(late.as_deref(), Some(&b"late"[..]));

    // And a whole exchange under a klaw deadline (a cancel region over tokio I/O): the peer
    // stays silent again, so the region's deadline ends it.
    let mut byte = [0; 1];
    let silent =
        klaw::cancel::move_on_after(Duration::from_millis(20), client.read_exact(&mut byte));
    assert!(silent.await.is_none());
    Ok(())
}
