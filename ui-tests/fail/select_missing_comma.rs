async fn run(rx: klaw::channel::Receiver<u8>) -> u8 {
    klaw::select! {
        recv(rx) -> msg => msg.unwrap_or(0)
        after(std::time::Duration::from_secs(1)) => 0,
    }
}

fn main() {}
