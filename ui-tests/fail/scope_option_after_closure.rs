async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s| Ok(()), supervisor)
}

fn main() {}
