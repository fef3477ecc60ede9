async fn run(a: klaw::channel::Receiver<u8>, b: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(a, b) -> _msg => {}
    }
}

fn main() {}
