// An arm that starts with its arrow: the operation before `->` is missing.
async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> _msg => {},
        -> msg => {}
    }
}

fn main() {}
