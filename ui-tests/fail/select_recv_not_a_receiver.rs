async fn run(numbers: Vec<u8>) {
    klaw::select! {
        recv(numbers) -> _msg => {}
    }
}

fn main() {}
