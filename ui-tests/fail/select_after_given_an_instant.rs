async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> _msg => {}
        after(std::time::Instant::now()) => {}
    }
}

fn main() {}
