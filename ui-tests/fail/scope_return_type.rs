async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s| -> Result<(), klaw::Error> { Ok(()) })
}

fn main() {}
