// The last arm ends before its `=> body`.
async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> _msg => {},
        after(std::time::Duration::from_secs(1))
    }
}

fn main() {}
