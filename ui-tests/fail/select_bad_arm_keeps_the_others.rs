// One malformed arm does not throw the others away: their bodies are still checked.
async fn run(rx: klaw::channel::Receiver<u32>) {
    klaw::select! {
        recv(rx) => {},
        after(std::time::Duration::from_secs(1)) => {
            let count: u32 = "three";
            let _ = count;
        }
    }
}

fn main() {}
