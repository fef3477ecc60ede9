// A remote task's output travels back: it must be a serde type too.
struct Connection;

#[klaw::task(remote)]
async fn open(port: u16) -> Connection {
    let _ = port;
    Connection
}

fn main() {
    let _ = open(80);
}
