async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> msg: Result<u8, klaw::channel::RecvError> => {
            let _ = msg;
        }
    }
}

fn main() {}
