async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> _msg => {}
        at(std::time::Duration::from_secs(1)) => {}
    }
}

fn main() {}
