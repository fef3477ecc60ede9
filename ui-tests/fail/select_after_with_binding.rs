async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> _msg => {}
        after(std::time::Duration::from_secs(1)) -> elapsed => {}
    }
}

fn main() {}
