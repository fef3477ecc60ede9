async fn run(rx: klaw::channel::Receiver<u8>) -> u8 {
    // A refutable pattern would silently disable the arm on `Err`: it is a compile error.
    klaw::select! {
        recv(rx) -> Ok(value) => value,
    }
}

fn main() {}
