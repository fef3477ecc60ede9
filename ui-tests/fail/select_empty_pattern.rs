// An arrow with no pattern after it.
async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> => {}
    }
}

fn main() {}
