async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s| {
        s.spawn(|| 42);
        Ok(())
    })
}

fn main() {}
